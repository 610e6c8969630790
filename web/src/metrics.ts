// Prometheus text exposition, parsed just enough for the console: sample values by name and
// labels, and a quantile estimated from the change of a histogram's buckets between scrapes.

export type Samples = Map<string, number>;

export function parseMetrics(text: string): Samples {
  const out: Samples = new Map();
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const sp = line.lastIndexOf(" ");
    const value = Number(line.slice(sp + 1));
    if (!Number.isNaN(value)) out.set(line.slice(0, sp), value);
  }
  return out;
}

/** Sum of every sample of `name` (all label sets). */
export function total(s: Samples, name: string): number | undefined {
  let sum: number | undefined;
  for (const [k, v] of s) {
    if (k === name || k.startsWith(`${name}{`)) sum = (sum ?? 0) + v;
  }
  return sum;
}

function buckets(s: Samples, name: string): [number, number][] {
  const out: [number, number][] = [];
  for (const [k, v] of s) {
    const m = k.match(new RegExp(`^${name}_bucket\\{.*le="([^"]+)".*\\}$`));
    if (m) out.push([m[1] === "+Inf" ? Infinity : Number(m[1]), v]);
  }
  return out.sort((a, b) => a[0] - b[0]);
}

/** The upper bound of the bucket holding quantile `q` of the observations made between two
 * scrapes (undefined when there were none). */
export function quantileSince(prev: Samples, now: Samples, name: string, q: number): number | undefined {
  const before = new Map(buckets(prev, name));
  const delta = buckets(now, name).map(([le, v]) => [le, v - (before.get(le) ?? 0)] as const);
  const count = delta.length ? delta[delta.length - 1][1] : 0;
  if (count <= 0) return undefined;
  const want = q * count;
  for (const [le, v] of delta) if (v >= want) return le;
  return undefined;
}
