import { setMaxListeners } from "node:events";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import type { Doc } from "../corpus/types.js";
import { JsonlAppender } from "../util/atomic.js";
import { BadRecordError, SynthmixError } from "../util/errors.js";
import { sha256, stableHash } from "../util/hash.js";
import { readJsonl, readJsonlTolerant } from "../util/jsonl.js";
import { fmtNum, Progress } from "../util/progress.js";
import { deriveSeed, Rng } from "../util/rng.js";
import { GenerationError, type GenUsage, type SamplingParams } from "./backends/types.js";
import { type CountTokens, chunkText, estimateTokens } from "./chunk.js";
import { checkOutput, type RejectReason } from "./cleanup.js";
import { KeywordExtractor } from "./keywords.js";
import { EndpointPool, type PoolSlot } from "./pool.js";
import {
  type PromptTemplate,
  type PromptVars,
  renderPrompt,
  resolveTemplate,
  templateHash,
} from "./prompts/index.js";
import { createEndpoint, type GeneratorSpec, generatorName, parseGeneratorSpec } from "./spec.js";

export interface GenerationOptions {
  workspace: string;
  /** Reads `<workspace>/corpus/<corpusName>/train.jsonl` only: held-out test documents are never sources. */
  corpusName: string;
  /** hq, qa, txbk, a template file path, or a loaded template. */
  style: string | PromptTemplate;
  /** Specs or spec strings; specs with the same backend + model are one generator over several endpoints. */
  generators: (GeneratorSpec | string)[];
  seed?: number;
  /** Stop adding source documents once their tokens reach this many. */
  budgetSourceTokens?: number;
  /** Stop starting new documents once accepted output tokens reach this many (per generator). */
  budgetOutputTokens?: number;
  maxDocs?: number;
  /** Chunk size for source-based styles (default 300 tokens). */
  chunkTokens?: number;
  /** Token counter (e.g. `(s) => tokenizer.encode(s).length`); default: a word-based estimate. */
  countTokens?: CountTokens;
  params?: SamplingParams;
  /** Keywords per TXBK prompt (default 5). */
  keywords?: number;
  /** TXBK audiences; one is chosen per document (seeded). */
  audiences?: string[];
  stripMarkdown?: boolean;
  /** Accept truncated outputs and skip the QA-pair check (for weak demo generators; see CleanupOptions). */
  lenient?: boolean;
  /**
   * Stop with an error when, after 50 completed requests, fewer than this share were accepted (default
   * 0.02): a generator whose every output is rejected would otherwise run until the corpus is exhausted.
   */
  minAcceptRate?: number;
  minOutputTokens?: number;
  maxOutputTokens?: number;
  /** Attempts per request beyond the first, on timeouts/429/5xx/malformed responses (default 6). */
  retries?: number;
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  timeoutMs?: number;
  /** Consecutive failed attempts after which an endpoint is taken out (default 10). */
  breakAfter?: number;
  /** llama.cpp threads for gguf generators (default 2). */
  threads?: number;
  skipBadRecords?: boolean;
  progress?: "bar" | "plain" | "silent";
  signal?: AbortSignal;
}

export interface GeneratorSummary {
  generator: string;
  backend: string;
  model: string;
  endpoints: string[];
  outDir: string;
  requests: { planned: number; alreadyDone: number; completed: number; failed: number; retries: number };
  accepted: number;
  rejected: Partial<Record<RejectReason, number>>;
  docsWritten: number;
  /** Documents left incomplete (failed requests or a stop); a rerun retries their missing requests. */
  docsIncomplete: number;
  tokens: { prompt: number; completion: number; acceptedOutput: number };
  costUsd?: number;
  elapsedSec: number;
  requestsPerSec: number;
  outputTokensPerSec: number;
  /** Set when the run stopped early (circuit breaker, abort). */
  stoppedBy?: string;
}

export interface GenerationSummary {
  style: string;
  templateSha256: string;
  corpus: string;
  seed: number;
  sourceDocs: number;
  sourceTokens: number;
  badRecords: number;
  generators: GeneratorSummary[];
}

interface WorkItem {
  key: string;
  doc: Doc;
  chunk: number;
  chunks: number;
  parent: string;
  /** Rendered when dispatched, so a large plan does not hold every prompt in memory. */
  vars: PromptVars;
  extra?: Record<string, unknown>;
}

interface JournalRec {
  key: string;
  doc: string;
  chunk: number;
  chunks: number;
  parent: string;
  text?: string;
  rejected?: RejectReason;
  finish_reason?: string;
  usage?: GenUsage;
  latency_ms: number;
  endpoint: string;
  attempts: number;
}

/** Appends with one fsync per batch (group commit): fsync per record would cap the rate at ~1/fsync. */
class BatchedAppender {
  private queue: unknown[] = [];
  private scheduled = false;
  private app?: JsonlAppender;
  constructor(private readonly path: string) {}
  push(rec: unknown): void {
    this.queue.push(rec);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }
  flush(): void {
    this.scheduled = false;
    if (this.queue.length === 0) return;
    this.app ??= new JsonlAppender(this.path);
    const q = this.queue;
    this.queue = [];
    this.app.append(q, true);
  }
  close(): void {
    this.flush();
    this.app?.close();
  }
}

function partFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => /^part-.*\.jsonl$/.test(f))
    .sort()
    .map((f) => join(dir, f));
}

/** A fresh part file per run: a torn tail from a killed run stays the last line of its own file. */
let partCounter = 0;
function newPartName(): string {
  return `part-${Date.now().toString(36).padStart(9, "0")}-${process.pid}-${partCounter++}.jsonl`;
}

async function loadSources(opts: GenerationOptions): Promise<{ docs: Doc[]; bad: number }> {
  const dir = join(opts.workspace, "corpus", opts.corpusName);
  const path = join(dir, "train.jsonl");
  if (!existsSync(path)) {
    throw new SynthmixError("NO_CORPUS", `no source corpus at ${path}`, {
      hint: `import a corpus first (synthmix corpus ...) so that corpus/${opts.corpusName}/train.jsonl exists`,
    });
  }
  // Ids held out for evaluation must never be rephrased, even if a split file was edited by hand.
  const testIds = new Set<string>();
  const testDir = join(dir, "test");
  if (existsSync(testDir)) {
    for (const f of readdirSync(testDir).filter((x) => x.endsWith(".jsonl"))) {
      for (const r of await readJsonlTolerant<{ id?: string }>(join(testDir, f))) if (r.id) testIds.add(r.id);
    }
  }
  let bad = 0;
  const onBad = opts.skipBadRecords ? () => void bad++ : undefined;
  const docs: Doc[] = [];
  for await (const { value, line } of readJsonl<Doc>(path, onBad)) {
    const v = value as Partial<Doc> | null;
    if (!v || typeof v !== "object" || typeof v.id !== "string" || typeof v.text !== "string") {
      const err = new BadRecordError(path, line, "record needs string fields id and text", {
        hint: "fix the record or pass --skip-bad-records to skip and count such records",
      });
      if (onBad) {
        onBad();
        continue;
      }
      throw err;
    }
    if (testIds.has(v.id) || v.text.trim() === "") continue;
    docs.push(v as Doc);
  }
  return { docs, bad };
}

function groupGenerators(list: (GeneratorSpec | string)[]): GeneratorSpec[][] {
  const groups = new Map<string, GeneratorSpec[]>();
  for (const g of list) {
    const spec = typeof g === "string" ? parseGeneratorSpec(g) : g;
    const id = `${spec.backend}|${spec.model}|${spec.mode ?? ""}|${spec.name ?? ""}`;
    const arr = groups.get(id) ?? [];
    arr.push(spec);
    groups.set(id, arr);
  }
  if (groups.size === 0)
    throw new SynthmixError("NO_GENERATOR", "no generator given", { hint: "pass --generator" });
  return [...groups.values()];
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener(
      "abort",
      () => {
        clearTimeout(t);
        resolve();
      },
      { once: true },
    );
  });

/**
 * Generate synthetic documents from a corpus with one or more generators. Resumable and idempotent:
 * every request has a key; results are journaled (fsync'd) under `<out>/chunks/` as they arrive and
 * finished documents (chunks re-joined) are appended to `<out>/part-*.jsonl`; a rerun skips both.
 */
export async function runGeneration(opts: GenerationOptions): Promise<GenerationSummary> {
  const template = typeof opts.style === "string" ? resolveTemplate(opts.style) : opts.style;
  const tHash = templateHash(template);
  const seed = opts.seed ?? 0;
  const count = opts.countTokens ?? estimateTokens;
  const chunkTokens = opts.chunkTokens ?? 300;
  const params: SamplingParams = { temperature: 0.7, max_tokens: 1024, ...opts.params };
  // Check generator specs before reading anything, so a typo fails fast.
  const groups = groupGenerators(opts.generators);
  const names = new Map<string, GeneratorSpec>();
  for (const [spec] of groups) {
    const n = generatorName(spec);
    const other = names.get(n);
    if (other) {
      throw new SynthmixError(
        "GENERATOR_NAME",
        `generators ${other.backend}:${other.model} and ${spec.backend}:${spec.model} would both write to synthetic/${template.name}-${n}`,
        { hint: "give one of them a distinct name with ?name=NAME in its --generator spec" },
      );
    }
    names.set(n, spec);
  }
  const { docs, bad } = await loadSources(opts);
  if (docs.length === 0) {
    throw new SynthmixError("NO_SOURCES", `corpus ${opts.corpusName} has no usable training documents`);
  }

  // Seeded source order, independent of the generator so a comparison sees the same sources.
  const order = new Rng(deriveSeed(seed, "generate-sources", opts.corpusName, template.name)).shuffle(
    docs.map((_, i) => i),
  );
  const kw = template.input === "keywords" ? new KeywordExtractor() : undefined;
  if (kw) for (const d of docs) kw.add(d.text);

  interface Planned {
    doc: Doc;
    units: { text?: string; keywords?: string[]; audience?: string; parent: string }[];
  }
  const planned: Planned[] = [];
  let sourceTokens = 0;
  for (const i of order) {
    if (opts.maxDocs !== undefined && planned.length >= opts.maxDocs) break;
    if (opts.budgetSourceTokens !== undefined && sourceTokens >= opts.budgetSourceTokens) break;
    const doc = docs[i];
    if (kw) {
      const dseed = deriveSeed(seed, "txbk", doc.id);
      const aud = opts.audiences?.length
        ? opts.audiences[new Rng(dseed).int(opts.audiences.length)]
        : undefined;
      planned.push({
        doc,
        units: [{ keywords: kw.sample(doc.text, opts.keywords ?? 5, dseed), audience: aud, parent: doc.id }],
      });
      sourceTokens += count(doc.text);
    } else {
      const chunks = chunkText(doc.text, chunkTokens, count);
      if (chunks.length === 0) continue;
      planned.push({
        doc,
        units: chunks.map((text, k) => ({
          text,
          parent: chunks.length === 1 ? doc.id : `${doc.id}#chunk${k}`,
        })),
      });
      for (const c of chunks) sourceTokens += count(c);
    }
  }

  const results = await Promise.all(
    groups.map((specs) =>
      runOneGenerator(specs, {
        opts,
        template,
        tHash,
        params,
        planned,
        count,
      }),
    ),
  );
  return {
    style: template.name,
    templateSha256: tHash,
    corpus: opts.corpusName,
    seed,
    sourceDocs: planned.length,
    sourceTokens,
    badRecords: bad,
    generators: results,
  };
}

async function runOneGenerator(
  specs: GeneratorSpec[],
  ctx: {
    opts: GenerationOptions;
    template: PromptTemplate;
    tHash: string;
    params: SamplingParams;
    planned: {
      doc: Doc;
      units: { text?: string; keywords?: string[]; audience?: string; parent: string }[];
    }[];
    count: CountTokens;
  },
): Promise<GeneratorSummary> {
  const { opts, template, tHash, params, planned, count } = ctx;
  const spec0 = specs[0];
  const gname = generatorName(spec0);
  const outDir = join(opts.workspace, "synthetic", `${template.name}-${gname}`);
  const journalDir = join(outDir, "chunks");
  const generator = { backend: spec0.backend, model: spec0.model, params: { ...params } };
  const promptMeta = { style: template.name, version: template.version, sha256: tHash };
  const stripMd = opts.stripMarkdown ?? template.stripMarkdown ?? false;

  // Resume state: journaled request results and already-written documents.
  const journal = new Map<string, JournalRec>();
  for (const f of partFiles(journalDir)) {
    for (const r of await readJsonlTolerant<JournalRec>(f))
      if (r?.key && !journal.has(r.key)) journal.set(r.key, r);
  }
  const written = new Set<string>();
  for (const f of partFiles(outDir)) {
    for (const r of await readJsonlTolerant<Doc>(f)) if (r?.meta?.parent) written.add(r.meta.parent);
  }

  const summary: GeneratorSummary = {
    generator: gname,
    backend: spec0.backend,
    model: spec0.model,
    endpoints: specs.map((s) => s.baseUrl ?? s.model),
    outDir,
    requests: { planned: 0, alreadyDone: 0, completed: 0, failed: 0, retries: 0 },
    accepted: 0,
    rejected: {},
    docsWritten: 0,
    docsIncomplete: 0,
    tokens: { prompt: 0, completion: 0, acceptedOutput: 0 },
    elapsedSec: 0,
    requestsPerSec: 0,
    outputTokensPerSec: 0,
  };
  let acceptedOut = 0;
  for (const r of journal.values()) if (r.text !== undefined && !r.rejected) acceptedOut += count(r.text);

  const journalOut = new BatchedAppender(join(journalDir, newPartName()));
  const docsOut = new BatchedAppender(join(outDir, newPartName()));

  interface DocState {
    doc: Doc;
    keys: string[];
    results: (JournalRec | undefined)[];
    pending: number;
    started?: boolean;
    extra?: Record<string, unknown>;
  }
  const finishDoc = (st: DocState) => {
    const accepted = st.results.filter((r): r is JournalRec => !!r && r.text !== undefined && !r.rejected);
    if (accepted.length === 0) return;
    const usage = { prompt_tokens: 0, completion_tokens: 0 };
    let latency = 0;
    for (const r of st.results) {
      usage.prompt_tokens += r?.usage?.prompt_tokens ?? 0;
      usage.completion_tokens += r?.usage?.completion_tokens ?? 0;
      latency += r?.latency_ms ?? 0;
    }
    const rec: Doc = {
      id: `${st.doc.id}#${template.name}@${gname}`,
      text: accepted.map((r) => r.text).join("\n\n"),
      source: template.name,
      meta: {
        ...(st.doc.meta?.domain ? { domain: st.doc.meta.domain } : {}),
        parent: st.doc.id,
        generator,
        prompt: promptMeta,
        usage,
        latency_ms: Math.round(latency),
        chunks: st.keys.length,
        rejected_chunks: st.keys.length - accepted.length,
        keys: st.keys,
        ...st.extra,
      },
    };
    docsOut.push(rec);
    written.add(st.doc.id);
    summary.docsWritten++;
  };

  const pool = new EndpointPool(
    specs.map((s) => createEndpoint(s, { timeoutMs: opts.timeoutMs, threads: opts.threads ?? 2 })),
    opts.breakAfter ?? 10,
  );
  const retries = opts.retries ?? 6;
  const baseMs = opts.backoffBaseMs ?? 500;
  const maxMs = opts.backoffMaxMs ?? 30_000;
  const abort = new AbortController();
  // Every in-flight request listens on this one signal; thousands of listeners are expected.
  setMaxListeners(0, abort.signal);
  const onOuterAbort = () => abort.abort();
  opts.signal?.addEventListener("abort", onOuterAbort, { once: true });
  let fatal: Error | undefined;

  // Count planned requests up front (for progress total and ETA).
  const states: DocState[] = [];
  for (const p of planned) {
    if (written.has(p.doc.id)) {
      summary.requests.alreadyDone += p.units.length;
      continue;
    }
    const items: WorkItem[] = p.units.map((u, k) => {
      const key = stableHash(
        {
          style: template.name,
          version: template.version,
          template: tHash,
          source: sha256(u.text ?? JSON.stringify([u.keywords, u.audience])),
          parent: u.parent,
          generator: { backend: spec0.backend, model: spec0.model, mode: spec0.mode ?? "chat" },
          params,
        },
        32,
      );
      return {
        key,
        doc: p.doc,
        chunk: k,
        chunks: p.units.length,
        parent: u.parent,
        vars: { text: u.text, keywords: u.keywords, audience: u.audience },
      };
    });
    const u0 = p.units[0];
    const extra = u0.keywords
      ? { keywords: u0.keywords, ...(u0.audience ? { audience: u0.audience } : {}) }
      : undefined;
    const st: DocState = {
      doc: p.doc,
      keys: items.map((i) => i.key),
      results: items.map((i) => journal.get(i.key)),
      pending: 0,
      extra,
    };
    st.pending = st.results.filter((r) => !r).length;
    summary.requests.alreadyDone += items.length - st.pending;
    summary.requests.planned += st.pending;
    (st as DocState & { items: WorkItem[] }).items = items;
    states.push(st);
  }

  const progress = new Progress(`generate ${template.name} ${gname}`, {
    total: summary.requests.planned,
    unit: "req",
    mode: opts.progress,
  });
  const t0 = Date.now();

  const runItem = async (item: WorkItem, st: DocState, firstSlot: PoolSlot): Promise<void> => {
    let slot: PoolSlot | undefined = firstSlot;
    for (let attempt = 0; ; attempt++) {
      if (!slot) {
        slot = await pool.acquire();
        if (!slot) {
          fatal ??= circuitError();
          return;
        }
      }
      const prompt = renderPrompt(template, item.vars);
      const started = performance.now();
      const usedEndpoint = slot.ep.label;
      try {
        const res = await slot.ep.generate({
          id: item.key,
          messages: prompt.messages,
          prompt: prompt.prompt,
          params,
          signal: abort.signal,
        });
        pool.release(slot, true);
        slot = undefined;
        const latency = performance.now() - started;
        const check = checkOutput(res.text, res.finishReason, {
          style: template.name,
          stripMarkdown: stripMd,
          minTokens: opts.minOutputTokens,
          maxTokens: opts.maxOutputTokens,
          countTokens: count,
          lenient: opts.lenient,
        });
        const rec: JournalRec = {
          key: item.key,
          doc: item.doc.id,
          chunk: item.chunk,
          chunks: item.chunks,
          parent: item.parent,
          ...(check.ok ? { text: check.text } : { rejected: check.reason }),
          finish_reason: res.finishReason,
          usage: res.usage,
          latency_ms: Math.round(latency * 10) / 10,
          endpoint: usedEndpoint,
          attempts: attempt + 1,
        };
        journalOut.push(rec);
        summary.requests.completed++;
        summary.tokens.prompt += res.usage?.prompt_tokens ?? 0;
        summary.tokens.completion += res.usage?.completion_tokens ?? 0;
        if (check.ok) {
          summary.accepted++;
          const n = count(check.text);
          summary.tokens.acceptedOutput += n;
          acceptedOut += n;
        } else {
          summary.rejected[check.reason] = (summary.rejected[check.reason] ?? 0) + 1;
          const done = summary.requests.completed;
          if (done >= 50 && summary.accepted / done < (opts.minAcceptRate ?? 0.02)) {
            const reasons = Object.entries(summary.rejected)
              .map(([r, n]) => `${r} ${n}`)
              .join(", ");
            fatal ??= new SynthmixError(
              "GENERATION_REJECTED",
              `${usedEndpoint}: ${summary.accepted} of ${done} outputs accepted (rejected: ${reasons}); stopping`,
              {
                hint: "check the generator and the prompt template (e.g. max_tokens too small, a base model given chat prompts); completed outputs are kept and a rerun resumes",
              },
            );
          }
        }
        st.results[item.chunk] = rec;
        st.pending--;
        if (st.pending === 0) finishDoc(st);
        tickProgress();
        return;
      } catch (e) {
        const err =
          e instanceof GenerationError
            ? e
            : new GenerationError((e as Error).message, false, {}, { cause: e });
        if (slot) pool.release(slot, false, err.message);
        slot = undefined;
        if (abort.signal.aborted) return;
        if (pool.allOpen) {
          fatal ??= circuitError();
          return;
        }
        if (!err.retryable || attempt >= retries) {
          summary.requests.failed++;
          summary.rejected.request_failed = (summary.rejected.request_failed ?? 0) + 1;
          if (summary.requests.failed <= 5) progress.log(`request failed: ${err.message}`);
          tickProgress();
          return;
        }
        summary.requests.retries++;
        const backoff = Math.min(maxMs, baseMs * 2 ** attempt) * (0.5 + Math.random() * 0.5);
        const wait = Math.min(Math.max(backoff, err.extra.retryAfterMs ?? 0), 5 * 60_000);
        await sleep(wait, abort.signal);
        if (abort.signal.aborted) return;
      }
    }
  };

  const circuitError = () =>
    new SynthmixError(
      "CIRCUIT_OPEN",
      `generator ${gname}: every endpoint keeps failing, stopping: ${pool.describeOpen()}`,
      {
        hint: "check that the server is up and the model name is right; completed outputs are saved, rerun to resume",
      },
    );

  const tickProgress = () => {
    const el = Math.max((Date.now() - t0) / 1000, 1e-3);
    progress.tick(1, {
      "out tok/s": summary.tokens.completion / el,
      ok: summary.accepted,
      rej: Object.values(summary.rejected).reduce((a, b) => a + (b ?? 0), 0) - summary.requests.failed,
      fail: summary.requests.failed,
    });
  };

  const inflight = new Set<Promise<void>>();
  try {
    // Documents whose requests were all journaled before a kill only need their record written.
    for (const st of states) if (st.pending === 0) finishDoc(st);
    outer: for (const st of states) {
      if (st.pending === 0) continue;
      let first = true;
      for (const item of (st as DocState & { items: WorkItem[] }).items) {
        if (st.results[item.chunk]) continue;
        if (fatal || abort.signal.aborted) break outer;
        const slot = await pool.acquire();
        if (!slot) {
          fatal ??= circuitError();
          break outer;
        }
        // Checked after waiting for a slot so the budget sees every finished request (it overshoots by
        // at most the requests in flight); a started document is always finished.
        if (first && opts.budgetOutputTokens !== undefined && acceptedOut >= opts.budgetOutputTokens) {
          pool.giveBack(slot);
          break outer;
        }
        first = false;
        st.started = true;
        const p = runItem(item, st, slot).catch((e) => {
          fatal ??= e as Error;
        });
        inflight.add(p);
        p.finally(() => inflight.delete(p));
      }
    }
    await Promise.all(inflight);
  } finally {
    opts.signal?.removeEventListener("abort", onOuterAbort);
    if (fatal) abort.abort();
    await Promise.all(inflight);
    journalOut.close();
    docsOut.close();
    await pool.close();
    summary.elapsedSec = (Date.now() - t0) / 1000;
    summary.requestsPerSec = summary.requests.completed / Math.max(summary.elapsedSec, 1e-3);
    summary.outputTokensPerSec = summary.tokens.completion / Math.max(summary.elapsedSec, 1e-3);
    const pin = spec0.pricePerMInput;
    const pout = spec0.pricePerMOutput;
    if (pin !== undefined || pout !== undefined) {
      summary.costUsd = (summary.tokens.prompt * (pin ?? 0) + summary.tokens.completion * (pout ?? 0)) / 1e6;
    }
    summary.docsIncomplete = states.filter((st) => st.started && st.pending > 0).length;
    if (fatal) summary.stoppedBy = fatal.message;
    else if (opts.signal?.aborted) summary.stoppedBy = "aborted";
    progress.finish();
  }
  if (fatal) throw fatal;
  return summary;
}

/** One human-readable block for the CLI. */
export function formatSummary(s: GenerationSummary): string {
  const lines = [
    `style ${s.style} (template ${s.templateSha256.slice(0, 12)}), corpus ${s.corpus}, seed ${s.seed}: ` +
      `${s.sourceDocs} source docs, ${fmtNum(s.sourceTokens)} source tokens${s.badRecords ? `, ${s.badRecords} bad records skipped` : ""}`,
  ];
  for (const g of s.generators) {
    const rej = Object.entries(g.rejected)
      .map(([k, v]) => `${k} ${v}`)
      .join(", ");
    lines.push(
      `  ${g.generator} -> ${g.outDir}\n` +
        `    requests: ${g.requests.completed} done, ${g.requests.alreadyDone} already done, ${g.requests.failed} failed, ${g.requests.retries} retries\n` +
        `    accepted ${g.accepted}, rejected: ${rej || "none"}; documents written ${g.docsWritten}` +
        (g.docsIncomplete ? `, ${g.docsIncomplete} incomplete (rerun to resume)` : "") +
        (g.stoppedBy ? `\n    stopped: ${g.stoppedBy}` : "") +
        `\n` +
        `    tokens: prompt ${fmtNum(g.tokens.prompt)}, completion ${fmtNum(g.tokens.completion)}, accepted output ${fmtNum(g.tokens.acceptedOutput)}` +
        `; ${fmtNum(g.requestsPerSec)} req/s, ${fmtNum(g.outputTokensPerSec)} out tok/s` +
        (g.costUsd !== undefined ? `; cost $${g.costUsd.toFixed(4)}` : ""),
    );
  }
  return lines.join("\n");
}
