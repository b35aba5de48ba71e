-- Raw visits readable per link (Shlink's visit lists). Clicks are still written raw one row per
-- batch (click_events), as cheap to record as before. A split job, off the redirect path, takes
-- folded raw batches a group at a time and moves their clicks here in one transaction, so each
-- click is in exactly one of the two tables:
-- - a link with several clicks in the group gets rows of its own (code = the link key);
-- - the others share a tail row per bucket of the group (code = '#' || bucket), which names its
--   links and each one's clicks and bots (links, link_visits, link_bots): the long tail of links
--   clicked once costs one row per bucket, not one per link.
-- Rows hold up to 2,000 clicks in time order (packClicks); the upkeep job merges small rows. A page
-- of a link's visits reads the heads of its own rows and its bucket's tail rows that name it, by
-- (code, last_at), newest first, and then only the rows the page needs.
CREATE TABLE click_visits (
  code        text NOT NULL,
  first_at    timestamptz NOT NULL,
  last_at     timestamptz NOT NULL,
  visits      integer NOT NULL,
  bots        integer NOT NULL,
  links       text[],
  link_visits integer[],
  link_bots   integer[],
  data        text NOT NULL
);
ALTER TABLE click_visits ALTER COLUMN data SET STORAGE EXTERNAL;
CREATE INDEX click_visits_code_last_idx ON click_visits (code, last_at);
-- Lists across links (a domain, all links) read newest first, and the retention job by time.
CREATE INDEX click_visits_last_idx ON click_visits (last_at);

-- Orphan visits as a list (Shlink's orphan visits): each visit of a flush, up to a bound per flush
-- (orphan-visits.ts; beyond it visits are only counted, so a scan of random codes cannot flood it),
-- written with the flush's counts in one ledgered statement. Kept for the retention window.
CREATE TABLE orphan_visit_list (
  at         timestamptz NOT NULL,
  id         uuid NOT NULL,
  domain     text NOT NULL,
  type       text NOT NULL,
  path       text NOT NULL,
  bot        boolean NOT NULL,
  user_agent text,
  referer    text
);
CREATE INDEX orphan_visit_list_at_idx ON orphan_visit_list (at, id);
