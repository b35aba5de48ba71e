-- The change stream is read in seq order (DESIGN §6): a reader that has seen seq N must never
-- later find a row below N. A bigserial alone does not promise that (a transaction may take seq 10,
-- another 11 and commit first). Every statement that inserts outbox rows, or links (whose creates
-- write outbox rows in the same statement or transaction), first takes one advisory lock held to
-- commit, so outbox rows become visible in seq order. Updates of used_clicks (maxClicks) write no
-- outbox row and take no lock.
CREATE FUNCTION outbox_in_commit_order() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_advisory_xact_lock(4851202611);
  RETURN NULL;
END $$;
CREATE TRIGGER outbox_in_commit_order BEFORE INSERT ON outbox
  FOR EACH STATEMENT EXECUTE FUNCTION outbox_in_commit_order();
CREATE TRIGGER links_insert_in_commit_order BEFORE INSERT ON links
  FOR EACH STATEMENT EXECUTE FUNCTION outbox_in_commit_order();

-- The relay marks what it has appended to the change stream in Redis.
ALTER TABLE outbox ADD COLUMN published_at timestamptz;
CREATE INDEX outbox_unpublished_idx ON outbox (seq) WHERE published_at IS NULL;
