-- A link that is not valid yet (Shlink's validSince): before this time it answers as unknown. NULL: at once.
ALTER TABLE links ADD COLUMN valid_since timestamptz;
