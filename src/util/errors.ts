/**
 * A typed error whose message a user can act on: it names the file, line or request it concerns
 * and, where possible, what to do about it. The CLI prints `message` (and `hint`) without a stack.
 */
export class SynthmixError extends Error {
  readonly code: string;
  readonly hint?: string;
  constructor(code: string, message: string, options?: { hint?: string; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = "SynthmixError";
    this.code = code;
    this.hint = options?.hint;
  }
}

/** A record-level input error (file + line/record), which `--skip-bad-records` may turn into a count. */
export class BadRecordError extends SynthmixError {
  readonly file: string;
  readonly record: number;
  constructor(file: string, record: number, what: string, options?: { hint?: string; cause?: unknown }) {
    super("BAD_RECORD", `${file}:${record}: ${what}`, options);
    this.name = "BadRecordError";
    this.file = file;
    this.record = record;
  }
}

export function formatError(err: unknown): string {
  if (err instanceof SynthmixError) return err.hint ? `${err.message}\n  hint: ${err.hint}` : err.message;
  if (err instanceof Error) return err.stack ?? err.message;
  return String(err);
}
