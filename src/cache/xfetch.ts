// Early probabilistic refresh (XFetch, Vattani et al., "Optimal probabilistic cache stampede
// prevention"): a reader refreshes an entry before it expires with a probability that grows as
// expiry nears and with how costly the load was, so a hot entry is reloaded once, by one reader,
// ahead of time, instead of by a burst of readers the moment it expires.

/** True when this read should refresh the entry now. `rand` is uniform in (0, 1]. */
export function shouldRefreshEarly(
  now: number,
  expiresAt: number,
  loadMs: number,
  beta = 1,
  rand: number = 1 - Math.random(),
): boolean {
  return now - loadMs * beta * Math.log(rand) >= expiresAt;
}
