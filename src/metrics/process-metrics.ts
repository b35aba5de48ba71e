// The Node.js process metrics Hop and `hop worker` expose under hop_process_. prom-client names its
// three sums over every handle, request and resource type `*_total`, which promises a counter
// (`promtool check metrics` rejects it); they are gauges, so they are exposed as `*_all_types`.
import { collectDefaultMetrics, Gauge, type Registry } from 'prom-client';

const PREFIX = 'hop_process_';
const RENAMED = [
  {
    from: 'nodejs_active_handles_total',
    to: 'nodejs_active_handles_all_types',
    help: 'Active libuv handles, all types together (hop_process_nodejs_active_handles summed over type)',
  },
  {
    from: 'nodejs_active_requests_total',
    to: 'nodejs_active_requests_all_types',
    help: 'Active libuv requests, all types together (hop_process_nodejs_active_requests summed over type)',
  },
  {
    from: 'nodejs_active_resources_total',
    to: 'nodejs_active_resources_all_types',
    help: 'Resources keeping the event loop alive, all types together (hop_process_nodejs_active_resources summed over type)',
  },
] as const;

export function collectProcessMetrics(register: Registry): void {
  collectDefaultMetrics({ register, prefix: PREFIX });
  for (const r of RENAMED) {
    // prom-client omits a gauge its Node.js lacks the call for; then there is nothing to rename.
    const source = register.getSingleMetric(PREFIX + r.from);
    if (source === undefined) continue;
    register.removeSingleMetric(PREFIX + r.from);
    // The value is still prom-client's own reading: get() runs the source gauge's collect().
    new Gauge({
      name: PREFIX + r.to,
      help: r.help,
      registers: [register],
      async collect() {
        const { values } = await source.get();
        this.set(values[0]?.value ?? 0);
      },
    });
  }
}
