// Planning a page of visits from stored groups' heads (domain/visits.ts): whatever the groups'
// spans and overlaps, reading only the groups the plan keeps gives the same page as reading all.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { seededRandom } from '../../bench/lib/links.ts';
import type { ClickEvent } from '../../src/domain/clicks.ts';
import { byNewest, newestVisits, planVisitPage, type VisitGroup } from '../../src/domain/visits.ts';

const visit = (at: number, id: number): ClickEvent => ({
  id: `00000000-0000-7000-8000-${String(id).padStart(12, '0')}`,
  code: 'x',
  at,
  referrerHost: null,
  country: null,
  browser: null,
  os: null,
  device: null,
  bot: false,
  visitor: '0000000000000000',
});

test('a planned page equals the page read from every group, overlaps and ties included', () => {
  const random = seededRandom(7);
  for (let round = 0; round < 300; round++) {
    // Groups as splits leave them: mostly consecutive spans, some reaching into others.
    const groups: { events: ClickEvent[]; head: VisitGroup }[] = [];
    let t = 0;
    let id = 0;
    const n = 1 + Math.floor(random() * 12);
    for (let g = 0; g < n; g++) {
      const size = 1 + Math.floor(random() * 8);
      const back = random() < 0.25 ? Math.floor(random() * 20) : 0;
      const events = Array.from({ length: size }, () =>
        visit(Math.max(0, t - back + Math.floor(random() * 6)), id++),
      );
      t += 5;
      const ats = events.map((e) => e.at);
      // A group crossing a window bound has no known count.
      const head = {
        first: Math.min(...ats),
        last: Math.max(...ats),
        matching: random() < 0.1 ? null : size,
      };
      groups.push({ events, head });
    }
    groups.sort((a, b) => b.head.last - a.head.last);
    const all = groups.flatMap((g) => g.events).sort(byNewest);
    const offset = Math.floor(random() * (all.length + 2));
    const limit = 1 + Math.floor(random() * 6);
    const plan = planVisitPage(
      groups.map((g) => g.head),
      offset + limit,
      offset,
      true,
    );
    assert.notEqual(plan.enough, null);
    const read = groups.slice(plan.skip, plan.enough!).flatMap((g) => g.events);
    const from = offset - plan.skipped;
    const page = newestVisits(read, from + limit).slice(from);
    assert.deepEqual(
      page.map((e) => e.id),
      all.slice(offset, offset + limit).map((e) => e.id),
      `round ${round}`,
    );
  }
});

test('a hot link: a deep page reads a couple of rows, not the ones before it', () => {
  // 500 rows of 2,000 visits each, one after another in time, newest first.
  const heads: VisitGroup[] = Array.from({ length: 500 }, (_, i) => ({
    first: (499 - i) * 2_000,
    last: (499 - i) * 2_000 + 1_999,
    matching: 2_000,
  }));
  const plan = planVisitPage(heads, 500_000 + 5_000, 500_000, true);
  assert.equal(plan.skip, 250);
  assert.equal(plan.skipped, 500_000);
  assert.equal(plan.enough, 253);
  const first = planVisitPage(heads, 5_000, 0, false);
  assert.deepEqual(first, { enough: 3, skip: 0, skipped: 0 });
});

test('more heads are asked for while the ones at hand may not hold the page', () => {
  const heads: VisitGroup[] = [{ first: 10, last: 20, matching: 3 }];
  assert.equal(planVisitPage(heads, 5, 0, false).enough, null);
  assert.equal(planVisitPage(heads, 5, 0, true).enough, 1);
});
