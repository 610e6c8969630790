// Exact decimal strings for money: parsed into BigInt at a scale, never into JS floats.
// `chartNumber` is the one way out to a float, for chart coordinates only (pixels, not money).

const DECIMAL = /^\d{1,20}(\.\d{1,20})?$/;

export function isDecimal(s: string): boolean {
  return DECIMAL.test(s);
}

export function scaleOf(s: string): number {
  const dot = s.indexOf(".");
  return dot < 0 ? 0 : s.length - dot - 1;
}

/** The integer `s * 10^scale`; more decimals than `scale` is an error (never rounded). */
export function toScaled(s: string, scale: number): bigint {
  if (!isDecimal(s)) throw new Error(`not a decimal: ${s}`);
  const [int, frac = ""] = s.split(".");
  if (frac.length > scale && /[1-9]/.test(frac.slice(scale))) {
    throw new Error(`${s} has more than ${scale} decimals`);
  }
  return BigInt(int + frac.slice(0, scale).padEnd(scale, "0"));
}

export function fromScaled(v: bigint, scale: number): string {
  const neg = v < 0n;
  const digits = (neg ? -v : v).toString().padStart(scale + 1, "0");
  const out = scale === 0 ? digits : `${digits.slice(0, -scale)}.${digits.slice(-scale)}`;
  return neg ? `-${out}` : out;
}

export function add(a: string, b: string): string {
  const s = Math.max(scaleOf(a), scaleOf(b));
  return fromScaled(toScaled(a, s) + toScaled(b, s), s);
}

export function sub(a: string, b: string): string {
  const s = Math.max(scaleOf(a), scaleOf(b));
  return fromScaled(toScaled(a, s) - toScaled(b, s), s);
}

export function mul(a: string, b: string): string {
  const sa = scaleOf(a);
  const sb = scaleOf(b);
  return fromScaled(toScaled(a, sa) * toScaled(b, sb), sa + sb);
}

export function cmp(a: string, b: string): number {
  const s = Math.max(scaleOf(a), scaleOf(b));
  const d = toScaled(a, s) - toScaled(b, s);
  return d === 0n ? 0 : d < 0n ? -1 : 1;
}

export function isZero(s: string): boolean {
  return !/[1-9]/.test(s);
}

/** Trailing zeros dropped for display ("0.01000000" -> "0.01"); still exact. */
export function trim(s: string): string {
  if (!s.includes(".")) return s;
  return s.replace(/0+$/, "").replace(/\.$/, "");
}

/** A float for a chart's axis only: never used for an amount shown, sent or compared. */
export function chartNumber(s: string): number {
  return Number(s);
}
