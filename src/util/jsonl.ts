import { createReadStream } from "node:fs";
import { createInterface } from "node:readline";
import { createGunzip } from "node:zlib";
import { BadRecordError } from "./errors.js";

export interface JsonlLine<T = unknown> {
  value: T;
  line: number;
}

/**
 * Stream a JSONL file (optionally .gz) line by line with 1-based line numbers. A line that is not valid
 * JSON throws a BadRecordError naming file and line, or, when `onBad` is given, is reported there and
 * skipped. Blank lines are ignored. Values are unknown: the stage that owns the file validates them
 * (e.g. corpus/docs.ts for Doc lines).
 */
export async function* readJsonl(
  path: string,
  onBad?: (err: BadRecordError) => void,
): AsyncGenerator<JsonlLine> {
  const raw = createReadStream(path);
  const input = path.endsWith(".gz") ? raw.pipe(createGunzip()) : raw;
  const rl = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY });
  let line = 0;
  try {
    for await (const text of rl) {
      line++;
      if (text.trim() === "") continue;
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch (e) {
        const err = new BadRecordError(path, line, `malformed JSON (${(e as Error).message})`, {
          hint: "fix or remove the line, or pass --skip-bad-records to skip and count such lines",
        });
        if (onBad) {
          onBad(err);
          continue;
        }
        throw err;
      }
      yield { value, line };
    }
  } catch (e) {
    if (e instanceof BadRecordError) throw e;
    const err = new BadRecordError(path, line + 1, `cannot read: ${(e as Error).message}`, { cause: e });
    if (onBad) onBad(err);
    else throw err;
  } finally {
    rl.close();
    raw.destroy();
  }
}

/**
 * Read a whole (small) JSONL file, dropping a torn final line left by a killed writer. Values are unknown:
 * validate them with the owning stage's schema (readJsonlTolerantLines gives the line numbers for that).
 */
export async function readJsonlTolerant(path: string): Promise<unknown[]> {
  return (await readJsonlTolerantLines(path)).map((l) => l.value);
}

/** readJsonlTolerant with each value's 1-based line number (for messages naming file:line). */
export async function readJsonlTolerantLines(path: string): Promise<JsonlLine[]> {
  const { readFileSync, existsSync } = await import("node:fs");
  if (!existsSync(path)) return [];
  const text = readFileSync(path, "utf8");
  const lines = text.split("\n");
  const out: JsonlLine[] = [];
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i];
    if (l.trim() === "") continue;
    try {
      out.push({ value: JSON.parse(l), line: i + 1 });
    } catch (e) {
      // Only the last non-empty line may be torn (a kill mid-write); anything earlier is corruption.
      const rest = lines.slice(i + 1).some((x) => x.trim() !== "");
      if (rest) throw new BadRecordError(path, i + 1, `malformed JSON (${(e as Error).message})`);
    }
  }
  return out;
}
