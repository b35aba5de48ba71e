-- The embedded click log (DESIGN §7): a flush stores its clicks raw and unfolded; a fold later sums
-- many flushes into the rollups and marks them folded. Batches written with their rollups (every
-- batch before this migration, and every batch of the stream workers) are folded already.
ALTER TABLE click_events ADD COLUMN folded boolean NOT NULL DEFAULT true;
-- The fold a raw batch was given to, and how many rollup batches that fold writes: after a crash
-- the same fold is redone with the same batch ids, so the ledger drops what it already applied.
ALTER TABLE click_events ADD COLUMN fold_id uuid;
ALTER TABLE click_events ADD COLUMN fold_parts integer;
CREATE INDEX click_events_unfolded_idx ON click_events (batch_id) WHERE NOT folded;
