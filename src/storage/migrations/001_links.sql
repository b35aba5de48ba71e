-- Hop's schema, identical on the embedded database and on every shard (PostgreSQL 15+).
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TABLE links (
  code          text PRIMARY KEY,
  bucket        smallint NOT NULL CHECK (bucket >= 0 AND bucket < 1024),
  url           text NOT NULL,
  redirect_type smallint NOT NULL DEFAULT 302 CHECK (redirect_type IN (301, 302, 307, 308)),
  forward_query boolean NOT NULL DEFAULT true,
  expires_at    timestamptz,
  max_clicks    integer CHECK (max_clicks IS NULL OR max_clicks >= 1),
  used_clicks   integer NOT NULL DEFAULT 0,
  disabled      boolean NOT NULL DEFAULT false,
  deleted_at    timestamptz,
  tags          text[] NOT NULL DEFAULT '{}',
  title         text,
  created_at    timestamptz NOT NULL,
  updated_at    timestamptz NOT NULL
);

-- Newest-first keyset pagination over live links.
CREATE INDEX links_created_idx ON links (created_at DESC, code DESC) WHERE deleted_at IS NULL;
CREATE INDEX links_tags_idx ON links USING gin (tags) WHERE deleted_at IS NULL;
-- Substring search over code, URL and title stays fast at millions of rows (trigrams).
CREATE INDEX links_search_idx ON links
  USING gin ((code || ' ' || url || ' ' || coalesce(title, '')) gin_trgm_ops)
  WITH (gin_pending_list_limit = 256) WHERE deleted_at IS NULL;
-- Moving a bucket between shards copies by bucket.
CREATE INDEX links_bucket_idx ON links (bucket);

-- The change stream (DESIGN §6): written in the same transaction as the change.
CREATE TABLE outbox (
  seq        bigserial PRIMARY KEY,
  kind       text NOT NULL,
  code       text NOT NULL,
  bucket     smallint NOT NULL,
  payload    jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE idempotency_keys (
  scope        text NOT NULL,
  key          text NOT NULL,
  request_hash text NOT NULL,
  outcome      jsonb,
  created_at   timestamptz NOT NULL,
  PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);

CREATE TABLE api_keys (
  id         text PRIMARY KEY,
  name       text NOT NULL,
  prefix     text NOT NULL,
  key_hash   text NOT NULL UNIQUE,
  created_at timestamptz NOT NULL,
  revoked_at timestamptz
);

-- Exactly-once click counting (DESIGN §7): a batch id is applied once.
CREATE TABLE click_batches (
  batch_id   uuid PRIMARY KEY,
  applied_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE click_rollups (
  code   text NOT NULL,
  hour   timestamptz NOT NULL,
  dim    text NOT NULL,
  value  text NOT NULL,
  clicks bigint NOT NULL,
  PRIMARY KEY (code, hour, dim, value)
);

CREATE TABLE click_totals (
  code   text PRIMARY KEY,
  clicks bigint NOT NULL
);
