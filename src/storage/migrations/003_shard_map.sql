-- Placement (DESIGN §2): which shard owns each of the 1,024 buckets, one row per version so a
-- bucket can later move online under a new version. Every shard keeps the same rows. The embedded
-- database is one shard and leaves both tables empty.
CREATE TABLE shard_map (
  version     integer PRIMARY KEY CHECK (version >= 1),
  shard_count integer NOT NULL CHECK (shard_count >= 1),
  owners      smallint[] NOT NULL CHECK (cardinality(owners) = 1024),
  created_at  timestamptz NOT NULL DEFAULT now()
);

-- Which shard of which cluster this database is, so a reordered or mixed-up HOP_DATABASE_URLS is
-- refused at boot instead of routing codes to the wrong database.
CREATE TABLE shard_identity (
  only_row   boolean PRIMARY KEY DEFAULT true CHECK (only_row),
  cluster_id uuid NOT NULL,
  shard      integer NOT NULL CHECK (shard >= 0),
  created_at timestamptz NOT NULL DEFAULT now()
);
