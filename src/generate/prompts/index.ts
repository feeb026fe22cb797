import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { SynthmixError } from "../../util/errors.js";
import { sha256, stableStringify } from "../../util/hash.js";

/**
 * Prompt templates for the synthetic styles. Built-ins follow the literature: HQ and QA from WRAP
 * ("Rephrasing the Web", Maini et al. 2024) and Nemotron-CC, TXBK from Cosmopedia. Users add styles
 * as YAML/JSON files with the same fields; `{text}`, `{keywords}` and `{audience}` are substituted.
 */
export interface PromptTemplate {
  name: string;
  version: string;
  system: string;
  user: string;
  /** "source": one request per source chunk (rephrase); "keywords": one per document, seeded by keywords. */
  input?: "source" | "keywords";
  /** Strip Markdown from outputs of this style. */
  stripMarkdown?: boolean;
}

export const HQ: PromptTemplate = {
  name: "hq",
  version: "1",
  system:
    "You are a careful writing assistant. You rewrite text in a clear, high-quality encyclopedic style " +
    "while keeping every fact and never adding information.",
  user:
    "For the following paragraph give me a paraphrase of the same in high-quality English language as in " +
    "sentences on Wikipedia. Output only the paraphrase.\n\n{text}",
  input: "source",
  stripMarkdown: true,
};

export const QA: PromptTemplate = {
  name: "qa",
  version: "1",
  system:
    "You are a helpful teacher. You turn documents into question-and-answer pairs that cover all of " +
    "their information.",
  user:
    'Convert the following paragraph into a conversational format with multiple tags of "Question:" ' +
    'followed by "Answer:". Cover all the information in the paragraph and output only the pairs.\n\n{text}',
  input: "source",
  stripMarkdown: true,
};

export const TXBK: PromptTemplate = {
  name: "txbk",
  version: "1",
  system: "You are an expert educator who writes clear, rigorous and engaging textbooks.",
  user:
    "Write a textbook section for {audience} about the following topics: {keywords}. Give clear " +
    "explanations, precise definitions and worked examples, and end with a few exercises. Write flowing " +
    "prose in the style of a textbook and output only the section.",
  input: "keywords",
  stripMarkdown: false,
};

export const BUILTIN_TEMPLATES: Record<string, PromptTemplate> = { hq: HQ, qa: QA, txbk: TXBK };

const TemplateSchema = z.object({
  name: z.string().regex(/^[a-z0-9][a-z0-9_-]*$/i, "letters, digits, '_' or '-'"),
  version: z.union([z.string(), z.number()]).transform(String),
  system: z.string().default(""),
  user: z.string().min(1),
  input: z.enum(["source", "keywords"]).optional(),
  stripMarkdown: z.boolean().optional(),
});

/** Load a user template (YAML or JSON): name, version, system, user (+ optional input, stripMarkdown). */
export function loadTemplate(path: string): PromptTemplate {
  let raw: unknown;
  try {
    raw = parseYaml(readFileSync(path, "utf8"));
  } catch (e) {
    throw new SynthmixError("TEMPLATE", `${path}: cannot read template (${(e as Error).message})`);
  }
  const r = TemplateSchema.safeParse(raw);
  if (!r.success) {
    const msg = r.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; ");
    throw new SynthmixError("TEMPLATE", `${path}: invalid template: ${msg}`, {
      hint: "a template needs name, version, system and user (with {text} or {keywords})",
    });
  }
  const t = r.data;
  const input = t.input ?? (t.user.includes("{text}") ? "source" : "keywords");
  return { ...t, input };
}

/** A built-in style name (hq, qa, txbk) or a path to a template file. */
export function resolveTemplate(styleOrPath: string): PromptTemplate {
  const b = BUILTIN_TEMPLATES[styleOrPath.toLowerCase()];
  if (b) return b;
  if (/\.(ya?ml|json)$/i.test(styleOrPath)) return loadTemplate(styleOrPath);
  throw new SynthmixError("STYLE", `unknown style "${styleOrPath}"`, {
    hint: `use one of ${Object.keys(BUILTIN_TEMPLATES).join(", ")} or a template file (.yaml/.json)`,
  });
}

/** sha256 of the template's content (name, version, system, user): recorded in every output's provenance. */
export function templateHash(t: PromptTemplate): string {
  return sha256(stableStringify({ name: t.name, version: t.version, system: t.system, user: t.user }));
}

export interface PromptVars {
  text?: string;
  keywords?: string[];
  audience?: string;
}

function fill(s: string, v: PromptVars): string {
  return s
    .replaceAll("{text}", v.text ?? "")
    .replaceAll("{keywords}", (v.keywords ?? []).join(", "))
    .replaceAll("{audience}", v.audience ?? "a general audience");
}

export interface RenderedPrompt {
  messages: { role: "system" | "user"; content: string }[];
  /** The same prompt as one string for base models (/v1/completions). */
  prompt: string;
}

export function renderPrompt(t: PromptTemplate, v: PromptVars): RenderedPrompt {
  const system = fill(t.system, v);
  const user = fill(t.user, v);
  const messages: RenderedPrompt["messages"] = [];
  if (system.trim()) messages.push({ role: "system", content: system });
  messages.push({ role: "user", content: user });
  const prompt = `${system.trim() ? `${system}\n\n` : ""}${user}\n\n`;
  return { messages, prompt };
}
