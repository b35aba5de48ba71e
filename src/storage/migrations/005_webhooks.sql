-- Webhooks (issue "Events at scale"): subscriptions, the deliveries owed to each, and how far the
-- fan-out has read each change stream. Kept on shard 0 (with the API keys); the embedded
-- database holds them too. A delivery is unique per (webhook, event): a change fanned out twice,
-- or a click offered twice, is delivered once.
CREATE TABLE webhooks (
  id                text PRIMARY KEY,
  url               text NOT NULL,
  events            text[] NOT NULL,
  secret            text NOT NULL,
  click_sample_rate double precision NOT NULL DEFAULT 1 CHECK (click_sample_rate > 0 AND click_sample_rate <= 1),
  created_at        timestamptz NOT NULL,
  deleted_at        timestamptz
);

CREATE TABLE webhook_offsets (
  stream integer PRIMARY KEY,
  seq    bigint NOT NULL
);

CREATE TABLE webhook_deliveries (
  id              bigserial PRIMARY KEY,
  webhook_id      text NOT NULL REFERENCES webhooks (id),
  event_id        text NOT NULL,
  event_type      text NOT NULL,
  payload         jsonb NOT NULL,
  -- pending (owed), delivered, or dead (gave up after the retry window)
  status          text NOT NULL DEFAULT 'pending',
  attempts        integer NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL,
  locked_until    timestamptz,
  last_status     integer,
  last_error      text,
  created_at      timestamptz NOT NULL,
  finished_at     timestamptz,
  UNIQUE (webhook_id, event_id)
);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_log_idx ON webhook_deliveries (webhook_id, id DESC);
