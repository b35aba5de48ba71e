// A few things at once (HTTP requests to a source, writes of a page's visits), and on the first
// failure: start nothing more, wait for what is under way, then fail with that first error.

/** `fn` over `items`, at most `n` at a time; the results in the items' order. */
export async function mapLimit<T, R>(
  items: readonly T[],
  n: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  let failed: { error: unknown } | null = null;
  const worker = async () => {
    while (failed === null && next < items.length) {
      const i = next++;
      try {
        out[i] = await fn(items[i]!);
      } catch (error) {
        failed ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
  if (failed !== null) throw (failed as { error: unknown }).error;
  return out;
}
