-- Online resharding (DESIGN §13). A bucket moves between shards under a brief write fence; these
-- tables and the trigger are what make a write at a shard that no longer owns its bucket fail
-- instead of landing where no reader will look. The embedded database leaves them empty.

-- Buckets this shard has handed to another: a write of one is refused (SQLSTATE HB001) and the
-- caller re-routes it by the newer shard map. The rows stay until the bucket moves back.
CREATE TABLE buckets_gone (
  bucket      smallint PRIMARY KEY CHECK (bucket >= 0 AND bucket < 1024),
  to_shard    integer NOT NULL,
  map_version integer NOT NULL,
  at          timestamptz NOT NULL DEFAULT now()
);

-- Buckets a mover is about to fence on this shard. A write of one takes the bucket's lock shared;
-- the mover takes it exclusively to fence the bucket, so writes wait (they do not fail) while it
-- finishes the copy. Other writes take no lock at all: the mover waits out every transaction older
-- than its row here before it fences, so none can slip past unlocked. After the fence,
-- buckets_gone says where the bucket went. The mover's own copies and deletes set hop.mover.
CREATE TABLE buckets_moving (
  bucket smallint PRIMARY KEY CHECK (bucket >= 0 AND bucket < 1024),
  at     timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION links_bucket_owned() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  b smallint := CASE WHEN TG_OP = 'DELETE' THEN OLD.bucket ELSE NEW.bucket END;
BEGIN
  IF b IS NULL OR current_setting('hop.mover', true) = 'on' THEN
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
  END IF;
  IF EXISTS (SELECT 1 FROM buckets_moving WHERE bucket = b) THEN
    PERFORM pg_advisory_xact_lock_shared(7243003, b);
  END IF;
  IF EXISTS (SELECT 1 FROM buckets_gone WHERE bucket = b) THEN
    RAISE EXCEPTION 'bucket % has moved to another shard', b USING ERRCODE = 'HB001';
  END IF;
  RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END $$;
CREATE TRIGGER links_bucket_owned BEFORE INSERT OR UPDATE OR DELETE ON links
  FOR EACH ROW EXECUTE FUNCTION links_bucket_owned();

-- The exactly-once ledger per bucket: which buckets of a batch this shard has applied, so that
-- the ledger moves with its bucket and a batch replayed after a move adds nothing twice. NULL (rows
-- from before this column, and the embedded database's) means the whole batch.
ALTER TABLE click_batches ADD COLUMN buckets smallint[];

-- The bucket of an idempotency record's key (scope NUL key), so the record moves with it.
ALTER TABLE idempotency_keys ADD COLUMN bucket smallint;
CREATE INDEX idempotency_keys_bucket_idx ON idempotency_keys (bucket);
-- A keyed create claims its key on the key's owner: the claim is fenced like a link row.
CREATE TRIGGER idempotency_keys_bucket_owned BEFORE INSERT OR UPDATE ON idempotency_keys
  FOR EACH ROW EXECUTE FUNCTION links_bucket_owned();

-- Where each shard's servers are, on every shard: a running Hop that adopts a map with a shard its
-- HOP_DATABASE_URLS did not name connects to it from here. `urls` is primaryURL[,replicaURL…].
CREATE TABLE shard_nodes (
  shard    integer PRIMARY KEY CHECK (shard >= 0),
  urls     text NOT NULL,
  added_at timestamptz NOT NULL DEFAULT now()
);

-- The mover's plan and progress, on shard 0: one row per bucket move (planned: nothing copied yet;
-- copied: staged on the taking shard; moved: done; aborted: the old placement kept), so a mover
-- killed at any step continues on the next run, and `hop shards status` lists moves in progress.
CREATE TABLE bucket_moves (
  id          bigserial PRIMARY KEY,
  bucket      smallint NOT NULL CHECK (bucket >= 0 AND bucket < 1024),
  from_shard  integer NOT NULL,
  to_shard    integer NOT NULL,
  state       text NOT NULL CHECK (state IN ('planned', 'copied', 'moved', 'aborted')),
  map_version integer,
  rows_copied bigint NOT NULL DEFAULT 0,
  fence_ms    double precision,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX bucket_moves_open_idx ON bucket_moves (bucket) WHERE state IN ('planned', 'copied');

-- Where a bucket's rows wait on the shard that takes them until the fence moves them into the
-- real tables in one commit: copied rows never show in this shard's lists, searches and counts
-- before it owns them. Same columns as the real tables (a later migration that adds a column to
-- one of these adds it here too), no indexes beyond what the copy looks up, no triggers.
CREATE SCHEMA hop_staging;
CREATE TABLE hop_staging.links (LIKE links INCLUDING DEFAULTS);
CREATE INDEX staging_links_bucket_idx ON hop_staging.links (bucket);
CREATE TABLE hop_staging.idempotency_keys (LIKE idempotency_keys INCLUDING DEFAULTS);
CREATE TABLE hop_staging.click_packs (LIKE click_packs INCLUDING DEFAULTS);
CREATE INDEX staging_click_packs_code_idx ON hop_staging.click_packs (code);
CREATE TABLE hop_staging.click_packs_daily (LIKE click_packs_daily INCLUDING DEFAULTS);
CREATE INDEX staging_click_packs_daily_code_idx ON hop_staging.click_packs_daily (code);
CREATE TABLE hop_staging.click_visits (LIKE click_visits INCLUDING DEFAULTS);
CREATE INDEX staging_click_visits_code_idx ON hop_staging.click_visits (code);
