import type { z } from "zod";
import { BadRecordError } from "../util/errors.js";
import { parseJsonRecord } from "../util/json.js";
import { readJsonl, readJsonlTolerantLines } from "../util/jsonl.js";
import { type Doc, DocSchema, DocTextSchema } from "./types.js";

/**
 * The one reader of `Doc` lines (corpus splits, synthetic part files, mixture sources, the tokenizer's
 * JSONL inputs): every consumer validates a line against the corpus stage's DocSchema here, so a bad
 * record is reported the same way everywhere, as a BadRecordError naming `file:line` and the field.
 */
export interface DocLine<T = Doc> {
  doc: T;
  /** 1-based line number in the file. */
  line: number;
}

export interface DocReadOptions {
  /** Report a bad line here and skip it (`--skip-bad-records`); without it a bad line throws. */
  onBad?: (err: BadRecordError) => void;
  /** The hint of a bad-record error (default: what a document line must look like). */
  hint?: string;
}

const DOC_HINT = 'each line must be a JSON object like {"id": "...", "text": "...", "source": "..."}';

/** Check a line against DocSchema, or DocTextSchema (only a string `text`, for plain `{"text"}` files). */
function check<T>(schema: z.ZodType<T>, value: unknown, path: string, line: number, hint?: string): T {
  return parseJsonRecord(path, line, value, schema, { what: "a document record", hint: hint ?? DOC_HINT });
}

/** Validate one parsed line as a Doc; throws a BadRecordError naming `path:line`. */
export function parseDocRecord(value: unknown, path: string, line: number, hint?: string): Doc {
  return check(DocSchema, value, path, line, hint);
}

/** Parse and validate one line of text (for readers that hold lines already, e.g. a file's head). */
export function parseDocLine(text: string, path: string, line: number, hint?: string): Doc {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new BadRecordError(path, line, `malformed JSON (${(e as Error).message})`, {
      hint: hint ?? DOC_HINT,
    });
  }
  return parseDocRecord(value, path, line, hint);
}

async function* readChecked<T>(
  schema: z.ZodType<T>,
  path: string,
  opts: DocReadOptions,
): AsyncGenerator<DocLine<T>> {
  for await (const { value, line } of readJsonl(path, opts.onBad)) {
    let doc: T;
    try {
      doc = check(schema, value, path, line, opts.hint);
    } catch (e) {
      if (!(opts.onBad && e instanceof BadRecordError)) throw e;
      opts.onBad(e);
      continue;
    }
    yield { doc, line };
  }
}

/** Stream the Doc records of a JSONL file (optionally .gz) with their line numbers. */
export function readDocLines(path: string, opts: DocReadOptions = {}): AsyncGenerator<DocLine> {
  return readChecked(DocSchema, path, opts);
}

/** Stream only the texts of a JSONL file's records (each line an object with a string `text`). */
export async function* readDocTexts(
  path: string,
  opts: DocReadOptions = {},
): AsyncGenerator<{ text: string; line: number }> {
  for await (const { doc, line } of readChecked(DocTextSchema, path, opts)) {
    yield { text: doc.text, line };
  }
}

/**
 * The Doc records of a small file that a live or killed writer may have left with a torn last line
 * (generate's part files): that line is dropped, any other bad line throws naming `path:line`.
 */
export async function readDocsTolerant(path: string): Promise<DocLine[]> {
  const out: DocLine[] = [];
  for (const { value, line } of await readJsonlTolerantLines(path)) {
    out.push({ doc: parseDocRecord(value, path, line), line });
  }
  return out;
}
