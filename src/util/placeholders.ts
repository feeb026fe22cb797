import { SynthmixError } from "./errors.js";

/**
 * The one placeholder vocabulary of run commands (`scheduler.command`, `scheduler.external.command`,
 * `synthmix train --external`): the run folder is accepted as `{run_dir}` and as `{runDir}`.
 */
export const COMMAND_PLACEHOLDERS = ["config", "run_dir", "runDir", "id", "threads"] as const;
export type CommandPlaceholder = (typeof COMMAND_PLACEHOLDERS)[number];

// `{name}` not preceded by `$`: `${VAR}` is shell expansion and is left to the shell.
const PLACEHOLDER = /(?<!\$)\{([A-Za-z_][A-Za-z0-9_]*)\}/g;

/** `{name}` placeholders in a command that are not in COMMAND_PLACEHOLDERS. */
export function unknownPlaceholders(command: string): string[] {
  const out: string[] = [];
  for (const m of command.matchAll(PLACEHOLDER)) {
    if (!(COMMAND_PLACEHOLDERS as readonly string[]).includes(m[1]) && !out.includes(m[1])) out.push(m[1]);
  }
  return out;
}

export function unknownPlaceholderMessage(bad: string[]): string {
  return `unknown placeholder${bad.length > 1 ? "s" : ""} ${bad.map((b) => `{${b}}`).join(", ")} (known: ${COMMAND_PLACEHOLDERS.map((p) => `{${p}}`).join(" ")})`;
}

/**
 * Substitute the placeholders of one command string; `quote` (e.g. shell quoting) is applied to each
 * value. Unknown placeholders are refused rather than passed to the trainer verbatim.
 */
export function fillPlaceholders(
  template: string,
  values: { config: string; runDir: string; id?: string; threads?: number },
  quote: (s: string) => string = (s) => s,
): string {
  const bad = unknownPlaceholders(template);
  if (bad.length > 0) {
    throw new SynthmixError("COMMAND_TEMPLATE", `command "${template}": ${unknownPlaceholderMessage(bad)}`, {
      hint: "use only the known placeholders; a shell variable is written $VAR (or with braces after a $)",
    });
  }
  const table: Record<CommandPlaceholder, string | undefined> = {
    config: values.config,
    run_dir: values.runDir,
    runDir: values.runDir,
    id: values.id,
    threads: values.threads === undefined ? undefined : String(values.threads),
  };
  return template.replace(PLACEHOLDER, (_all, name: CommandPlaceholder) => {
    const v = table[name];
    if (v === undefined) {
      throw new SynthmixError("COMMAND_TEMPLATE", `command "${template}": {${name}} has no value here`);
    }
    return quote(v);
  });
}

/** POSIX shell single quoting. */
export function shellQuote(s: string): string {
  return /^[A-Za-z0-9_./=:@%+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}
