import { readFileSync } from "node:fs";
import { isMap, isScalar, isSeq, LineCounter, type Node, parseDocument } from "yaml";
import type { z } from "zod";
import { SynthmixError } from "../util/errors.js";

/** One validation problem: the key path (`corpus.sources[0].path`), its line if known, and the reason. */
export interface ConfigIssue {
  path: string;
  line?: number;
  message: string;
}

/** A config file that does not parse or does not match its schema; `issues` lists every problem. */
export class ConfigError extends SynthmixError {
  readonly file: string;
  readonly issues: ConfigIssue[];
  constructor(file: string, issues: ConfigIssue[]) {
    const lines = issues.map(
      (i) => `${file}${i.line ? `:${i.line}` : ""}: ${i.path ? `${i.path}: ` : ""}${i.message}`,
    );
    super("CONFIG", lines.join("\n"), { hint: "fix the listed keys in the config file and rerun" });
    this.name = "ConfigError";
    this.file = file;
    this.issues = issues;
  }
}

/**
 * Read a YAML or JSON config file (JSON is parsed as YAML, which is a superset, so both give line numbers)
 * and validate it against a zod schema. Errors name the file, the key path and the line.
 */
export function loadConfigFile<T>(path: string, schema: z.ZodType<T>): T {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new SynthmixError("CONFIG", `${path}: cannot read config file (${(e as Error).message})`, {
      cause: e,
    });
  }
  return parseConfigText(text, path, schema);
}

/** Like `loadConfigFile` for text already in memory; `file` is only used in messages. */
export function parseConfigText<T>(text: string, file: string, schema: z.ZodType<T>): T {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      file,
      doc.errors.map((e) => ({
        path: "",
        line: lineCounter.linePos(e.pos[0]).line,
        message: `syntax error: ${e.message.split("\n")[0]}`,
      })),
    );
  }
  const value = doc.toJS() ?? {};
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issues: ConfigIssue[] = [];
  const at = (path: (string | number)[], message: string) => {
    const node = nearestNode(doc.contents as Node | null, path);
    const line = node?.range ? lineCounter.linePos(node.range[0]).line : undefined;
    issues.push({ path: formatPath(path), line, message });
  };
  for (const issue of result.error.issues) {
    const path = issue.path.map((p) => (typeof p === "symbol" ? String(p) : p));
    // One issue per unknown key, pointing at that key's line (a likely typo).
    if (issue.code === "unrecognized_keys") for (const k of issue.keys) at([...path, k], "unknown key");
    else at(path, describeIssue(issue, valueAt(value, path)));
  }
  throw new ConfigError(file, issues);
}

export function formatPath(path: (string | number)[]): string {
  let out = "";
  for (const p of path) out += typeof p === "number" ? `[${p}]` : out === "" ? p : `.${p}`;
  return out;
}

function describeIssue(issue: z.core.$ZodIssue, actual: unknown): string {
  if (issue.code === "invalid_type") {
    return actual === undefined
      ? `missing (expected ${issue.expected})`
      : `expected ${issue.expected}, got ${typeName(actual)}`;
  }
  if (issue.code === "unrecognized_keys")
    return `unknown key${issue.keys.length > 1 ? "s" : ""}: ${issue.keys.join(", ")}`;
  return issue.message;
}

function typeName(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  return typeof v;
}

function valueAt(root: unknown, path: (string | number)[]): unknown {
  let cur = root;
  for (const p of path) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = (cur as Record<string | number, unknown>)[p];
  }
  return cur;
}

/**
 * The YAML node at `path` (for a map entry, its key, whose line is where a reader looks), or the deepest
 * existing ancestor when the path is missing (a missing key points at its parent map).
 */
function nearestNode(root: Node | null, path: (string | number)[]): Node | null {
  let cur: Node | null = root;
  for (let i = 0; i < path.length; i++) {
    const p = path[i];
    if (cur === null) return null;
    if (isMap(cur)) {
      const pair = cur.items.find((it) => (isScalar(it.key) ? it.key.value : it.key) === p);
      if (!pair) return cur;
      if (i === path.length - 1 || pair.value === null) return (pair.key as Node) ?? cur;
      cur = pair.value as Node;
    } else if (isSeq(cur) && typeof p === "number") {
      const item = cur.items[p] as Node | undefined;
      if (!item) return cur;
      cur = item;
    } else {
      return cur;
    }
  }
  return cur;
}
