import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { readDocLines } from "../corpus/docs.js";
import type { Doc } from "../corpus/types.js";
import { SynthmixError } from "../util/errors.js";
import { sha256, stableHash } from "../util/hash.js";
import { deriveSeed, Rng } from "../util/rng.js";
import type { SamplingParams } from "./backends/types.js";
import { type CountTokens, chunkText } from "./chunk.js";
import type { Shard } from "./journal.js";
import { KeywordExtractor } from "./keywords.js";
import type { PromptTemplate, PromptVars } from "./prompts/index.js";
import type { GeneratorSpec } from "./spec.js";

/**
 * The plan: which source documents are used (seeded order, budgets, shard), the units (chunks or
 * keyword sets) each is split into, and the request key of every unit. Pure given its inputs, so the
 * same command plans the same requests on every rerun and on every shard.
 */
export interface PlannedUnit {
  text?: string;
  keywords?: string[];
  audience?: string;
  parent: string;
}

export interface PlannedDoc {
  doc: Doc;
  units: PlannedUnit[];
}

export interface WorkItem {
  key: string;
  doc: Doc;
  chunk: number;
  chunks: number;
  parent: string;
  /** Rendered when dispatched, so a large plan does not hold every prompt in memory. */
  vars: PromptVars;
}

export async function loadSources(
  workspace: string,
  corpusName: string,
  skipBadRecords: boolean,
): Promise<{ docs: Doc[]; bad: number }> {
  const dir = join(workspace, "corpus", corpusName);
  const path = join(dir, "train.jsonl");
  if (!existsSync(path)) {
    throw new SynthmixError("NO_CORPUS", `no source corpus at ${path}`, {
      hint: `import a corpus first (synthmix corpus ...) so that corpus/${corpusName}/train.jsonl exists`,
    });
  }
  // Ids held out for evaluation must never be rephrased, even if a split file was edited by hand; a
  // corrupt line there is an error (a skipped one could leak a held-out document into the sources).
  const testIds = new Set<string>();
  const testDir = join(dir, "test");
  if (existsSync(testDir)) {
    for (const f of readdirSync(testDir).filter((x) => x.endsWith(".jsonl"))) {
      for await (const { doc } of readDocLines(join(testDir, f))) testIds.add(doc.id);
    }
  }
  let bad = 0;
  const onBad = skipBadRecords ? () => void bad++ : undefined;
  const docs: Doc[] = [];
  const hint = "fix the record or pass --skip-bad-records to skip and count such records";
  for await (const { doc } of readDocLines(path, { onBad, hint })) {
    if (testIds.has(doc.id) || doc.text.trim() === "") continue;
    docs.push(doc);
  }
  return { docs, bad };
}

export interface PlanOptions {
  seed: number;
  corpusName: string;
  maxDocs?: number;
  budgetSourceTokens?: number;
  chunkTokens: number;
  keywords: number;
  audiences?: string[];
  count: CountTokens;
}

/**
 * Seeded source order, independent of the generator so a comparison sees the same sources. Budgets
 * apply to the whole plan (before sharding), so the union of the shards is exactly the unsharded plan.
 */
export function planDocs(
  docs: Doc[],
  template: PromptTemplate,
  o: PlanOptions,
): { planned: PlannedDoc[]; sourceTokens: number } {
  const order = new Rng(deriveSeed(o.seed, "generate-sources", o.corpusName, template.name)).shuffle(
    docs.map((_, i) => i),
  );
  const kw = template.input === "keywords" ? new KeywordExtractor() : undefined;
  if (kw) for (const d of docs) kw.add(d.text);
  const planned: PlannedDoc[] = [];
  let sourceTokens = 0;
  for (const i of order) {
    if (o.maxDocs !== undefined && planned.length >= o.maxDocs) break;
    if (o.budgetSourceTokens !== undefined && sourceTokens >= o.budgetSourceTokens) break;
    const doc = docs[i];
    if (kw) {
      const units = keywordUnits(doc, kw, o);
      planned.push({ doc, units });
      sourceTokens += o.count(doc.text);
    } else {
      const chunks = chunkText(doc.text, o.chunkTokens, o.count);
      if (chunks.length === 0) continue;
      planned.push({
        doc,
        units: chunks.map((text, k) => ({
          text,
          parent: chunks.length === 1 ? doc.id : `${doc.id}#chunk${k}`,
        })),
      });
      for (const c of chunks) sourceTokens += o.count(c);
    }
  }
  return { planned, sourceTokens };
}

/**
 * A keyword style (TXBK) writes one section per chunkTokens of its source, each from its own seeded
 * sample of the document's keywords (and audience): one section per document would cap the supply at
 * documents x maxTokens however much a grid needs (440 Brown documents: ~50k tokens). Unit 0 keeps the
 * seed of the one-section-per-document plan, so its request key (and a journal holding it) is unchanged.
 */
function keywordUnits(doc: Doc, kw: KeywordExtractor, o: PlanOptions): PlannedUnit[] {
  const n = Math.max(1, Math.round(o.count(doc.text) / o.chunkTokens));
  const pool = kw.top(doc.text, o.keywords * 2);
  const units: PlannedUnit[] = [];
  for (let k = 0; k < n; k++) {
    const dseed = k === 0 ? deriveSeed(o.seed, "txbk", doc.id) : deriveSeed(o.seed, "txbk", doc.id, k);
    const aud = o.audiences?.length ? o.audiences[new Rng(dseed).int(o.audiences.length)] : undefined;
    const parent = n === 1 ? doc.id : `${doc.id}#topic${k}`;
    units.push({ keywords: KeywordExtractor.draw(pool, o.keywords, dseed), audience: aud, parent });
  }
  return units;
}

/**
 * This shard's documents: every n-th of the planned order starting at i. The planned order is a seeded
 * shuffle, so round-robin over it gives shards of equal size and (in expectation) equal token counts.
 */
export function shardDocs(planned: PlannedDoc[], shard: Shard): PlannedDoc[] {
  if (shard.count <= 1) return planned;
  return planned.filter((_, k) => k % shard.count === shard.index);
}

/** The request key of a unit: everything that determines its answer, nothing that does not. */
export function requestKey(
  template: PromptTemplate,
  tHash: string,
  spec: GeneratorSpec,
  params: SamplingParams,
  u: PlannedUnit,
): string {
  return stableHash(
    {
      style: template.name,
      version: template.version,
      template: tHash,
      source: sha256(u.text ?? JSON.stringify([u.keywords, u.audience])),
      parent: u.parent,
      generator: { backend: spec.backend, model: spec.model, mode: spec.mode ?? "chat" },
      params,
    },
    32,
  );
}

export function workItems(
  p: PlannedDoc,
  key: (u: PlannedUnit) => string,
): { items: WorkItem[]; extra?: Record<string, unknown> } {
  const items = p.units.map((u, k) => ({
    key: key(u),
    doc: p.doc,
    chunk: k,
    chunks: p.units.length,
    parent: u.parent,
    vars: { text: u.text, keywords: u.keywords, audience: u.audience },
  }));
  const u0 = p.units[0];
  const extra = u0.keywords
    ? { keywords: u0.keywords, ...(u0.audience ? { audience: u0.audience } : {}) }
    : undefined;
  return { items, extra };
}
