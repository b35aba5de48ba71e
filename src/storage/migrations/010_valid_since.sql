-- A link that is not valid yet (Shlink's validSince): before this time it answers as unknown. NULL: at once.
ALTER TABLE links ADD COLUMN valid_since timestamptz;
-- Shlink's findIfExists: a link by its exact URL. A hash index takes URLs of any length.
CREATE INDEX links_url_idx ON links USING hash (url);
