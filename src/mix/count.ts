import { SynthmixError } from "../util/errors.js";

/** Parse a token count as written by people: "2000000", "2e6", "2M", "500k", "1.5G". */
export function parseCount(text: string | number, what = "count"): number {
  if (typeof text === "number") return checkCount(text, String(text), what);
  const m = /^\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*([kKmMgGbB]?)\s*$/.exec(text);
  if (!m)
    throw new SynthmixError("BAD_COUNT", `${what}: "${text}" is not a number (e.g. 2000000, 2e6, 2M, 500k)`);
  const mult = { "": 1, k: 1e3, m: 1e6, g: 1e9, b: 1e9 }[m[2].toLowerCase() as "" | "k" | "m" | "g" | "b"];
  return checkCount(Number(m[1]) * mult, text, what);
}

function checkCount(n: number, text: string, what: string): number {
  const r = Math.round(n);
  if (!Number.isFinite(n) || r <= 0 || Math.abs(r - n) > 1e-6 * Math.max(1, n)) {
    throw new SynthmixError("BAD_COUNT", `${what}: "${text}" is not a positive whole number`);
  }
  return r;
}

/** Short label for a token count in ids: 2000000 -> "2M", 500000 -> "500k", 1234 -> "1234". */
export function countLabel(n: number): string {
  for (const [div, suf] of [
    [1e9, "G"],
    [1e6, "M"],
    [1e3, "k"],
  ] as const) {
    if (n >= div && Number.isInteger((n / div) * 1000)) return `${+(n / div).toFixed(3)}${suf}`;
  }
  return String(n);
}
