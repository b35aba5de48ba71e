// What HAProxy says of the servers behind one of its proxies, from its stats page's CSV: each
// server's status (UP, DOWN, "UP 1/2", MAINT, …) by name.
export async function haproxyServerStatus(statsUrl: string, proxy: string): Promise<Map<string, string>> {
  const res = await fetch(`${statsUrl}/stats;csv`, { signal: AbortSignal.timeout(2_000) });
  const [header, ...rows] = (await res.text()).split('\n');
  const cols = (header ?? '').replace(/^# /, '').split(',');
  const px = cols.indexOf('pxname');
  const sv = cols.indexOf('svname');
  const st = cols.indexOf('status');
  const out = new Map<string, string>();
  for (const row of rows) {
    const c = row.split(',');
    if (c[px] === proxy && c[sv] !== 'BACKEND' && c[sv] !== 'FRONTEND' && c[sv] !== undefined) {
      out.set(c[sv], c[st] ?? '');
    }
  }
  return out;
}
