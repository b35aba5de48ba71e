-- `hop move-store` (docs/runbooks/move-store.md): the embedded database moved into a cluster by
-- bucket. On the embedded database the one row names the database itself (an id made at its first
-- move); on shard 0 of a cluster it names the embedded database the cluster was filled from. So a
-- re-run after a crash finishes its own move, and a cluster holding anything else is refused.
CREATE TABLE store_move (
  only_row    boolean PRIMARY KEY DEFAULT true CHECK (only_row),
  source_id   uuid NOT NULL,
  -- Where the embedded database was when the row was written (for the refusal's message).
  source_dir  text NOT NULL,
  started_at  timestamptz NOT NULL DEFAULT now(),
  -- The last run that found both sides identical; NULL while a move is unfinished.
  verified_at timestamptz
);
