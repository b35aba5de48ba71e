-- Domains (DESIGN §11): a link is identified by (domain, code); '' is the default domain (the host
-- of HOP_PUBLIC_URL), so every existing link stays where it is and changing HOP_PUBLIC_URL moves
-- nothing. The code leads the key: placement is by code, and a lookup by code alone still uses it.
ALTER TABLE links ADD COLUMN domain text NOT NULL DEFAULT '';
ALTER TABLE links DROP CONSTRAINT links_pkey;
ALTER TABLE links ADD PRIMARY KEY (code, domain);
-- Keyset pagination now breaks ties on the domain too.
DROP INDEX links_created_idx;
CREATE INDEX links_created_idx ON links (created_at DESC, code DESC, domain DESC) WHERE deleted_at IS NULL;
-- Whether robots.txt lets crawlers follow the link (default: no).
ALTER TABLE links ADD COLUMN crawlable boolean NOT NULL DEFAULT false;
CREATE INDEX links_crawlable_idx ON links (domain) WHERE crawlable AND deleted_at IS NULL;

-- Registered domains and their redirects (read from shard 0). The '' row holds the default domain's.
CREATE TABLE domains (
  host               text PRIMARY KEY,
  root_redirect      text,
  not_found_redirect text,
  expired_redirect   text,
  created_at         timestamptz NOT NULL,
  updated_at         timestamptz NOT NULL
);
INSERT INTO domains (host, created_at, updated_at) VALUES ('', now(), now());

-- Orphan visits: requests to a domain's root, to unknown codes, and other 404s, summed per hour.
-- `path` is one of the most visited paths of a flush, or '' for the rest: a scan of random codes
-- adds a bounded number of rows per flush. Written exactly once per batch id (click_batches).
CREATE TABLE orphan_visits (
  domain text NOT NULL,
  hour   timestamptz NOT NULL,
  bot    boolean NOT NULL,
  type   text NOT NULL CHECK (type IN ('root', 'unknown_code', 'other')),
  path   text NOT NULL,
  visits bigint NOT NULL,
  PRIMARY KEY (hour, domain, bot, type, path)
);
