// What a change owes the webhooks, shared by the SQL and in-memory stores.
import { type NewDelivery, type Webhook, wants } from '../domain/webhooks.ts';
import { linkToJson } from './link-json.ts';
import type { ChangeEvent } from './ports.ts';

/** The deliveries a change owes: one per live webhook that wants its kind and existed before it. */
export function deliveriesFor(
  stream: number,
  changes: readonly ChangeEvent[],
  hooks: readonly Webhook[],
): NewDelivery[] {
  return changes.flatMap((c) => {
    const eventId = `chg_${stream}_${c.seq}`;
    const payload = {
      id: eventId,
      type: c.kind,
      createdAt: c.at.toISOString(),
      data: { link: webhookLink(c.link) },
    };
    return hooks
      .filter((h) => wants(h, c.kind) && c.at >= h.createdAt)
      .map((h) => ({ webhookId: h.id, eventId, eventType: c.kind, payload, createdAt: c.at }));
  });
}

/** A link as a webhook receiver sees it: everything but the password's hash, which never leaves Hop. */
function webhookLink(link: ChangeEvent['link']) {
  const { passwordHash, ...rest } = linkToJson(link);
  return { ...rest, passwordProtected: passwordHash != null };
}
