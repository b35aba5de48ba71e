-- Where any other 404 on a domain (a path that is no code) sends visitors; NULL: 404 (Shlink's regular404Redirect).
ALTER TABLE domains ADD COLUMN other_not_found_redirect text;
