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

/** Hints for the file-system errors a user can fix (the rest get the system's own description). */
const FS_HINTS: Record<string, string> = {
  ENOENT: "check the path; create the parent folder or pass the right file",
  ENOTDIR: "a part of the path is a file, not a folder: choose another path",
  EISDIR: "the path is a folder; pass a file",
  EEXIST: "the path already exists: remove it or choose another one",
  EACCES: "you lack permission there: choose a writable path or fix its permissions",
  EPERM: "the operation is not permitted there: choose another path",
  EROFS: "the file system is read-only: write the workspace somewhere writable",
  ENOSPC:
    "the disk is full: free space or write the workspace to another disk, then rerun (work is resumable)",
  EDQUOT: "the disk quota is exhausted: free space, then rerun (work is resumable)",
  EMFILE: "too many open files: raise `ulimit -n` or use fewer threads",
};

interface ZodLikeIssue {
  path: PropertyKey[];
  message: string;
}

function isZodError(err: unknown): err is Error & { issues: ZodLikeIssue[] } {
  return (
    err instanceof Error && err.name === "ZodError" && Array.isArray((err as { issues?: unknown }).issues)
  );
}

function formatZod(err: { issues: ZodLikeIssue[] }): string {
  const parts = err.issues.map((i) => {
    const where = i.path.length ? i.path.map(String).join(".") : "value";
    return `${where}: ${i.message}`;
  });
  return `invalid options or config: ${parts.join("; ")}\n  hint: fix the value(s) named above (see --help, or \`synthmix schema study|grid\` for config files)`;
}

function formatSystemError(err: NodeJS.ErrnoException): string | undefined {
  if (typeof err.code !== "string" || !/^E[A-Z]+$/.test(err.code)) return undefined;
  const where = err.path
    ? ` ${err.path}${(err as { dest?: string }).dest ? ` -> ${(err as { dest?: string }).dest}` : ""}`
    : "";
  const what = err.syscall ? `cannot ${err.syscall}${where}` : `file system error${where}`;
  const desc = err.message.replace(/^[A-Z]+: /, "").replace(/, \w+ '.*'$/, "");
  const hint = FS_HINTS[err.code];
  return `${what}: ${desc}${hint ? `\n  hint: ${hint}` : ""}`;
}

/** True when stacks should be shown (SYNTHMIX_DEBUG=1): every other error prints without one. */
export function debugEnabled(): boolean {
  const v = process.env.SYNTHMIX_DEBUG;
  return v !== undefined && v !== "" && v !== "0";
}

/**
 * Make text from files and other input safe to print: control characters (ANSI escapes included),
 * bidirectional overrides and lone surrogates become visible escapes; newlines and tabs stay.
 */
export function escapeForTerminal(s: string): string {
  let out = "";
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const lead = c >= 0xd800 && c <= 0xdbff;
    const trail = c >= 0xdc00 && c <= 0xdfff;
    if (lead && i + 1 < s.length && s.charCodeAt(i + 1) >= 0xdc00 && s.charCodeAt(i + 1) <= 0xdfff) {
      out += s[i] + s[i + 1];
      i++;
    } else if (lead || trail || unsafeCode(c)) {
      out += c <= 0xff ? `\\x${c.toString(16).padStart(2, "0")}` : `\\u${c.toString(16).padStart(4, "0")}`;
    } else out += s[i];
  }
  return out;
}

function unsafeCode(c: number): boolean {
  if (c === 0x0a || c === 0x09) return false;
  return (
    c < 0x20 ||
    (c >= 0x7f && c <= 0x9f) ||
    (c >= 0x202a && c <= 0x202e) ||
    (c >= 0x2066 && c <= 0x2069) ||
    c === 0xfffe ||
    c === 0xffff
  );
}

/** The text the CLI prints for an error: what, where, and a hint; a stack only with SYNTHMIX_DEBUG=1. */
export function formatError(err: unknown): string {
  const debug = debugEnabled();
  let text: string;
  if (err instanceof SynthmixError) text = err.hint ? `${err.message}\n  hint: ${err.hint}` : err.message;
  else if (isZodError(err)) text = formatZod(err);
  else if (err instanceof Error) {
    text =
      formatSystemError(err as NodeJS.ErrnoException) ??
      `${err.message}\n  hint: this is an unexpected error; rerun with SYNTHMIX_DEBUG=1 for the stack and report it`;
  } else text = String(err);
  if (debug && err instanceof Error && err.stack) text += `\n${err.stack}`;
  return escapeForTerminal(text);
}
