/** Tick values for log axes over narrow ranges, where Vega's own log ticks are too sparse or crowded. */

/** 1-2-5 ticks between lo and hi (both > 0); falls back to powers of ten when there are too many. */
export function logTicks(lo: number, hi: number, max = 8): number[] {
  const out: number[] = [];
  for (let p = Math.floor(Math.log10(lo)); p <= Math.ceil(Math.log10(hi)); p++) {
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** p;
      if (v >= lo * 0.999 && v <= hi * 1.001) out.push(v);
    }
  }
  if (out.length > max) return out.filter((v) => Math.abs(Math.log10(v) - Math.round(Math.log10(v))) < 1e-9);
  if (out.length < 2) return [lo, hi];
  return out;
}

/** Evenly spaced "nice" ticks for a loss axis spanning [lo, hi] (used on log scales of loss too). */
export function linearTicks(lo: number, hi: number, target = 8): number[] {
  const span = hi - lo;
  if (!(span > 0)) return [lo];
  const raw = span / target;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step)
    out.push(Number(v.toPrecision(12)));
  return out;
}

/** Padded [lo, hi] domain (multiplicative padding, for log scales). */
export function logDomain(values: number[], pad = 1.06): [number, number] {
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  return [lo / pad, hi * pad];
}
