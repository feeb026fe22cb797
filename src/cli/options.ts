/**
 * The CLI's shared plumbing: option value parsers (one error code and message style), `collect` for
 * repeatable options, and the interrupt helper every long-running command uses.
 *
 * Commands are declared with `@commander-js/extra-typings`, so each action's option object is typed
 * from its flags, parsers and defaults (a misspelt `o.flag` does not compile). Import `Command` from
 * here rather than from "commander" so every file uses the typed one.
 */
import { SynthmixError } from "../util/errors.js";

export { Command } from "@commander-js/extra-typings";

export interface NumberSpec {
  /** Must be a whole number. */
  integer?: boolean;
  /** Smallest allowed value (inclusive). */
  min?: number;
  /** Largest allowed value (inclusive). */
  max?: number;
  /** Must be strictly greater than 0. */
  positive?: boolean;
}

function describe(spec: NumberSpec): string {
  const kind = spec.integer ? "integer" : "number";
  const article = spec.integer ? "an" : "a";
  if (spec.positive) return `a positive ${kind}`;
  if (spec.min === 0 && spec.max === undefined) return `a non-negative ${kind}`;
  if (spec.integer && spec.min === 1 && spec.max === undefined) return "a positive integer";
  if (spec.min !== undefined || spec.max !== undefined)
    return `${article} ${kind} in [${spec.min ?? "-∞"}, ${spec.max ?? "∞"}]`;
  return `${article} ${kind}`;
}

function fits(x: number, spec: NumberSpec): boolean {
  if (!Number.isFinite(x)) return false;
  if (spec.integer && !Number.isInteger(x)) return false;
  if (spec.positive && !(x > 0)) return false;
  if (spec.min !== undefined && x < spec.min) return false;
  return spec.max === undefined || x <= spec.max;
}

/** `--name` from "name" or "--name", for messages. */
function flagName(name: string): string {
  return name.startsWith("-") ? name : `--${name}`;
}

/** Parse `v` as a number for option `name`; throws BAD_OPTION naming the option and the value. */
export function parseNumber(name: string, v: string, spec: NumberSpec = {}): number {
  // Number("") and Number(" ") are 0: an empty value is a mistake, not zero.
  const x = v.trim() === "" ? Number.NaN : Number(v);
  if (!fits(x, spec)) {
    throw new SynthmixError("BAD_OPTION", `${flagName(name)}: expected ${describe(spec)}, got "${v}"`);
  }
  return x;
}

/** A commander option parser: `.option("--top-p <p>", "...", numberOption("top-p", { min: 0, max: 1 }))`. */
export function numberOption(name: string, spec: NumberSpec = {}): (v: string) => number {
  return (v) => parseNumber(name, v, spec);
}

/** Any finite number. */
export const num = (name: string) => numberOption(name);
/** A finite number >= 0. */
export const nonNegative = (name: string) => numberOption(name, { min: 0 });
/** A finite number > 0. */
export const positive = (name: string) => numberOption(name, { positive: true });
/** A whole number >= 0. */
export const nonNegativeInt = (name: string) => numberOption(name, { integer: true, min: 0 });
/** A whole number >= 1. */
export const positiveInt = (name: string) => numberOption(name, { integer: true, min: 1 });
/** Any whole number (seeds). */
export const integer = (name: string) => numberOption(name, { integer: true });

/** One of a fixed list of words: `.option("--normalize <form>", "...", oneOf("normalize", ["NFC", "none"] as const))`. */
export function oneOf<const T extends string>(name: string, allowed: readonly T[]): (v: string) => T {
  return (v) => {
    if ((allowed as readonly string[]).includes(v)) return v as T;
    throw new SynthmixError(
      "BAD_OPTION",
      `${flagName(name)}: expected one of ${allowed.join(", ")}, got "${v}"`,
    );
  };
}

/** Repeatable option: `.option("--source <x>", "...", collect)` gives every value in order. */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

// The interrupt helper lives in src/util/ so that earlier stages (the training worker) share it.
export { INTERRUPTED_EXIT_CODE, type InterruptOptions, withInterrupt } from "../util/interrupt.js";

/** Help text of every command's `--json` flag (one wording, so `--help` reads the same everywhere). */
export const JSON_HELP = "print the result as one JSON document on stdout (progress and logs go to stderr)";

/**
 * The `--json` convention of every command a script calls: with `json`, stdout gets exactly one JSON
 * document, `value` (the command's result: paths written, counts, ids, warnings), and nothing else;
 * otherwise the human text `human()`. Progress and log lines always go to stderr, and the exit code does
 * not depend on the flag. Written with console.log so in-process test runners capture it.
 */
export function printResult(json: boolean | undefined, value: unknown, human: () => string): void {
  console.log(json ? JSON.stringify(value, null, 2) : human());
}
