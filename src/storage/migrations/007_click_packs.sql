-- Packed rollups (DESIGN §7): one row per (link, hour, bot flag) and write, its breakdown values and
-- visitor registers in arrays, instead of one row per value and one per register. The database's
-- cost of writing clicks is per row; a link clicked once in a write now costs one row, not four or
-- more. A value is its dimension's tag and the value ('r' referrer, 'c' country, 'a' agent: browser,
-- OS and device joined by chr(31)); a register is reg * 64 + rank. Writes only append; the upkeep job
-- merges a link's rows of one hour (or day) into one, and sums whole past days into
-- click_packs_daily. Rows with code '' are the packs across all links.
CREATE TABLE click_packs (
  code   text NOT NULL,
  hour   timestamptz NOT NULL,
  bot    boolean NOT NULL,
  clicks bigint NOT NULL,
  vals   text[] NOT NULL,
  counts bigint[] NOT NULL,
  regs   integer[] NOT NULL
);
CREATE INDEX click_packs_code_hour_idx ON click_packs (code, hour);
-- Top links and the merge job read one time range across links. Packs arrive in time order, so a
-- BRIN index finds a range for almost nothing on the write path (a B-tree costs every insert).
CREATE INDEX click_packs_hour_brin ON click_packs USING brin (hour);

CREATE TABLE click_packs_daily (
  code   text NOT NULL,
  day    timestamptz NOT NULL,
  bot    boolean NOT NULL,
  clicks bigint NOT NULL,
  vals   text[] NOT NULL,
  counts bigint[] NOT NULL,
  regs   integer[] NOT NULL
);
CREATE INDEX click_packs_daily_code_day_idx ON click_packs_daily (code, day);
CREATE INDEX click_packs_daily_day_idx ON click_packs_daily (day);

INSERT INTO click_packs (code, hour, bot, clicks, vals, counts, regs)
  SELECT code, hour, bot, coalesce(sum(clicks) FILTER (WHERE dim = 'country'), 0),
    array_agg(left(dim, 1) || value ORDER BY dim, value), array_agg(clicks ORDER BY dim, value), '{}'
  FROM click_rollups GROUP BY code, hour, bot;
INSERT INTO click_packs_daily (code, day, bot, clicks, vals, counts, regs)
  SELECT code, day, bot, coalesce(sum(clicks) FILTER (WHERE dim = 'country'), 0),
    array_agg(left(dim, 1) || value ORDER BY dim, value), array_agg(clicks ORDER BY dim, value), '{}'
  FROM click_rollups_daily GROUP BY code, day, bot;
-- Registers: hourly for every day, and daily for the days already summed per day.
INSERT INTO click_packs (code, hour, bot, clicks, vals, counts, regs)
  SELECT code, day, bot, 0, '{}', '{}', array_agg(reg * 64 + rank ORDER BY reg)
  FROM click_visitors GROUP BY code, day, bot;
INSERT INTO click_packs_daily (code, day, bot, clicks, vals, counts, regs)
  SELECT v.code, v.day, v.bot, 0, '{}', '{}', array_agg(v.reg * 64 + v.rank ORDER BY v.reg)
  FROM click_visitors v, click_compaction c WHERE c.id = 1 AND v.day < c.through
  GROUP BY v.code, v.day, v.bot;
-- A link's total is now summed from its packs (a few rows), not updated on every write.
DROP TABLE click_totals;
DROP TABLE click_rollups;
DROP TABLE click_rollups_daily;
DROP TABLE click_visitors;
