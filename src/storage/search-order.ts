// The order of Shlink's list (LinkSearch.order) in code, as the SQL orders it: the memory store
// sorts by it, the sharded store merges shards by it, and the SQL store re-sorts by it when clicks
// held in memory change the order.
import type { LinkSearch, SearchedLink } from './ports.ts';

const cmp = (x: string | number, y: string | number) => (x < y ? -1 : x > y ? 1 : 0);

function orderValue(l: SearchedLink, field: LinkSearch['order']['field']): string | number {
  switch (field) {
    case 'createdAt':
      return l.createdAt.getTime();
    case 'code':
      return l.code;
    case 'url':
      return l.url;
    case 'title':
      return l.title ?? '';
    case 'clicks':
      return l.clicks;
    case 'humanClicks':
      return l.clicks - l.botClicks;
  }
}

/** Ties broken by code, then domain, in the same direction. */
export function searchOrder(order: LinkSearch['order']): (a: SearchedLink, b: SearchedLink) => number {
  const sign = order.desc ? -1 : 1;
  return (a, b) =>
    sign *
    (cmp(orderValue(a, order.field), orderValue(b, order.field)) ||
      cmp(a.code, b.code) ||
      cmp(a.domain, b.domain));
}
