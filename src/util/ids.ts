import { z } from "zod";
import { escapeForTerminal, SynthmixError } from "./errors.js";

/**
 * The one rule for every name that becomes a file or folder name (corpus names, model names, generator
 * and mixture keys, run ids): 1-128 characters of letters, digits, '.', '_' or '-', starting with a
 * letter or digit. So no separator, no "..", no hidden or absolute path, no leading '-' (an option to
 * a child process): a name can never point outside the folder it is joined to.
 */
export const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
export const ID_RULE = "1-128 letters, digits, '.', '_' or '-', starting with a letter or digit";

export function isId(s: unknown): s is string {
  return typeof s === "string" && ID_PATTERN.test(s);
}

/** A zod string that follows the id rule (for config schemas: the error names the key path). */
export const IdSchema = z.string().regex(ID_PATTERN, `must be ${ID_RULE} (it becomes a file name)`);

/** Return `value` if it follows the id rule, else throw an error naming what it is and where. */
export function checkId(value: unknown, what: string, where?: string): string {
  if (isId(value)) return value;
  const shown = typeof value === "string" ? JSON.stringify(value) : String(value);
  throw new SynthmixError(
    "BAD_ID",
    `${where ? `${where}: ` : ""}${what} ${escapeForTerminal(shown)} is not a valid name: it becomes a file name`,
    { hint: `use ${ID_RULE}` },
  );
}
