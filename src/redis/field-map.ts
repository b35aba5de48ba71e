// Redis answers field lists flat: [name, value, name, value, …] (stream entries, XINFO groups).

/** The flat list as a map of name to value; a trailing name without a value is left out. */
export function fieldMap<V>(flat: readonly V[]): Map<string, V> {
  const m = new Map<string, V>();
  for (let i = 0; i + 1 < flat.length; i += 2) m.set(String(flat[i]), flat[i + 1]!);
  return m;
}
