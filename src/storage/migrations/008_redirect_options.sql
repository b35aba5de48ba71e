-- Redirect rules: an ordered list of {url, conditions} (domain/redirect-rules.ts), read with the
-- link's redirect record and cached with it, so a rule costs no I/O on a cache hit. NULL: none.
ALTER TABLE links ADD COLUMN rules jsonb;
-- Where an expired, used-up or disabled link sends visitors instead of answering 410. NULL: 410.
ALTER TABLE links ADD COLUMN expired_url text;
-- A password-protected link's password as a scrypt hash with its salt and parameters. NULL: open.
ALTER TABLE links ADD COLUMN password_hash text;
