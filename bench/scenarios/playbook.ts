// The playbook scenario: runs whichever scaling stages can be measured yet and says why the others
// cannot, so the report always shows the whole ladder.

import { newReport, type ScenarioReport } from '../lib/report.ts';
import { PLAYBOOK_STAGES } from '../playbook.ts';
import type { BenchContext } from './common.ts';

export async function runPlaybook(ctx: BenchContext): Promise<ScenarioReport> {
  const report = newReport('playbook', {});
  const status = new Map<number, string>();
  for (const s of PLAYBOOK_STAGES) {
    if (s.run === undefined) {
      status.set(s.stage, `not available yet: ${s.unavailable ?? 'no runner'}`);
      continue;
    }
    ctx.log(`playbook stage ${s.stage}: ${s.name}`);
    try {
      const sub = await s.run(ctx);
      report.runs.push(...sub.runs.map((r) => ({ ...r, label: `stage ${s.stage} ${r.label}` })));
      report.tables.push(
        ...sub.tables.map((t) => ({ ...t, title: `Stage ${s.stage} (${s.name}): ${t.title}` })),
      );
      report.notes.push(...sub.notes.map((n) => `stage ${s.stage}: ${n}`));
      status.set(s.stage, 'measured');
    } catch (err) {
      status.set(s.stage, `failed: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  report.tables.unshift({
    title: 'Scaling playbook stages',
    head: ['stage', 'name', 'what changes', 'status'],
    align: 'rlll',
    rows: PLAYBOOK_STAGES.map((s) => [String(s.stage), s.name, s.change, status.get(s.stage) ?? '']),
  });
  report.data.stages = PLAYBOOK_STAGES.map((s) => ({
    stage: s.stage,
    name: s.name,
    status: status.get(s.stage) ?? null,
    reason: s.unavailable ?? null,
  }));
  return report;
}
