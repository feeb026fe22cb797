import { readFileSync } from "node:fs";
import type { z } from "zod";
import { BadRecordError, SynthmixError } from "./errors.js";

/** How a stage names a bad artifact: its error code, what the file is, and how to fix it. */
export interface JsonArtifact {
  code: string;
  /** e.g. "the sweep results", "mixture manifest": said when the file cannot be read or parsed. */
  what: string;
  hint?: string;
  /** Code and hint when the file cannot be read or is not JSON (default: code and hint). */
  unreadableCode?: string;
  unreadableHint?: string;
}

/**
 * The one reader of a JSON artifact: read, parse, validate against the stage's zod schema. Errors name
 * the file and the first bad key path, with the stage's code and hint; the data returned is the schema's.
 */
export function readJsonFile<S extends z.ZodType>(path: string, schema: S, a: JsonArtifact): z.infer<S> {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, "utf8"));
  } catch (e) {
    throw new SynthmixError(
      a.unreadableCode ?? a.code,
      `${path}: cannot read ${a.what} (${(e as Error).message})`,
      {
        hint: a.unreadableHint ?? a.hint,
      },
    );
  }
  return parseJsonValue(path, raw, schema, a);
}

/** The reader of one artifact kind: `readJsonFile` bound to its schema and its stage's code and hint. */
export function jsonFileReader<S extends z.ZodType>(
  schema: S,
  a: JsonArtifact,
): (path: string) => z.infer<S> {
  return (path) => readJsonFile(path, schema, a);
}

/** Validate an already parsed value (e.g. after a version check) the way readJsonFile does. */
export function parseJsonValue<S extends z.ZodType>(
  path: string,
  raw: unknown,
  schema: S,
  a: JsonArtifact,
): z.infer<S> {
  const r = schema.safeParse(raw);
  if (!r.success)
    throw new SynthmixError(a.code, `${path}: not ${a.what}: ${firstIssue(r.error)}`, { hint: a.hint });
  return r.data;
}

/** The first problem zod found, as `key.path: message` (`(root)` for the value itself). */
export function firstIssue(error: z.ZodError): string {
  const issue = error.issues[0];
  return `${issue.path.join(".") || "(root)"}: ${issue.message}`;
}

/**
 * Validate one record of a line-oriented artifact (JSONL): a bad one is a BadRecordError naming
 * `path:line`, what the line should have been, and the first bad field.
 */
export function parseJsonRecord<S extends z.ZodType>(
  path: string,
  line: number,
  raw: unknown,
  schema: S,
  a: { what: string; hint?: string },
): z.infer<S> {
  const r = schema.safeParse(raw);
  if (!r.success)
    throw new BadRecordError(path, line, `not ${a.what}: ${firstIssue(r.error)}`, { hint: a.hint });
  return r.data;
}
