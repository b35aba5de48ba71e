-- Click analytics (DESIGN §7): hourly rollups with breakdowns and a bot flag, daily rollups
-- summed from whole past hours, HyperLogLog visitor registers, raw events for a retention window.
-- Rows with code '' are the rollups across all links. Dimensions: referrer, country (which also
-- serves as the total: every click has one country value, '' when unknown) and agent (browser,
-- OS and device joined by chr(31)).

ALTER TABLE click_rollups RENAME TO click_rollups_v1;

CREATE TABLE click_rollups (
  code   text NOT NULL,
  dim    text NOT NULL,
  hour   timestamptz NOT NULL,
  value  text NOT NULL,
  bot    boolean NOT NULL,
  clicks bigint NOT NULL,
  PRIMARY KEY (code, dim, hour, value, bot)
);
-- Top links over a window scan one dimension's rows by time, across links.
CREATE INDEX click_rollups_hour_idx ON click_rollups (hour) WHERE dim = 'country';
-- The daily compaction reads whole hours across links; rows arrive in time order, so a BRIN index
-- finds them for almost nothing on the write path.
CREATE INDEX click_rollups_hour_brin ON click_rollups USING brin (hour);

INSERT INTO click_rollups (code, dim, hour, value, bot, clicks)
  SELECT code, 'country', hour, '', false, clicks FROM click_rollups_v1 WHERE dim = 'all';
INSERT INTO click_rollups (code, dim, hour, value, bot, clicks)
  SELECT '', 'country', hour, '', false, sum(clicks) FROM click_rollups_v1 WHERE dim = 'all' GROUP BY hour;
DROP TABLE click_rollups_v1;

-- The same sums per UTC day, for every hour before click_compaction.through: long windows
-- read a few rows per day instead of 24.
CREATE TABLE click_rollups_daily (
  code   text NOT NULL,
  dim    text NOT NULL,
  day    timestamptz NOT NULL,
  value  text NOT NULL,
  bot    boolean NOT NULL,
  clicks bigint NOT NULL,
  PRIMARY KEY (code, dim, day, value, bot)
);
CREATE INDEX click_rollups_daily_day_idx ON click_rollups_daily (day) WHERE dim = 'country';

-- One row. Batch writers hold it FOR SHARE while they decide whether an hour is already
-- compacted; the compaction job holds it FOR UPDATE, so no increment falls between the two.
CREATE TABLE click_compaction (
  id      smallint PRIMARY KEY CHECK (id = 1),
  through timestamptz NOT NULL
);
INSERT INTO click_compaction (id, through) VALUES (1, '1970-01-01T00:00:00Z');

CREATE TABLE click_visitors (
  code text NOT NULL,
  day  timestamptz NOT NULL,
  bot  boolean NOT NULL,
  reg  smallint NOT NULL,
  rank smallint NOT NULL,
  PRIMARY KEY (code, day, bot, reg)
);

-- Raw events, packed one row per batch (JSON columns, see encodeRawClicks): written once, read rarely, dropped whole
-- when they leave the retention window.
CREATE TABLE click_events (
  batch_id uuid PRIMARY KEY,
  first_at timestamptz NOT NULL,
  last_at  timestamptz NOT NULL,
  events   integer NOT NULL,
  data     text NOT NULL
);
-- Stored uncompressed: compressing megabytes a second would cost the writer more than the disk saves.
ALTER TABLE click_events ALTER COLUMN data SET STORAGE EXTERNAL;
CREATE INDEX click_events_last_at_idx ON click_events (last_at);

CREATE INDEX click_batches_applied_idx ON click_batches (applied_at);

-- Daily salts for visitor hashes, shared by every process; old ones are deleted so that old
-- hashes can no longer be linked to anyone.
CREATE TABLE click_salts (
  day  timestamptz PRIMARY KEY,
  salt text NOT NULL
);
