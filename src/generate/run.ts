import { join } from "node:path";
import { SynthmixError } from "../util/errors.js";
import { fmtNum, Progress } from "../util/progress.js";
import { assembleDoc, judge, wantsRetry } from "./assemble.js";
import type { GenResponse, SamplingParams } from "./backends/types.js";
import { type CountTokens, estimateTokens } from "./chunk.js";
import type { CleanupOptions, RejectReason } from "./cleanup.js";
import {
  acquireLock,
  BatchedAppender,
  checkManifest,
  checkWritable,
  fsError,
  type JournalRec,
  newPartName,
  partFiles,
  readJournal,
  readWritten,
  repairJsonlTail,
  type Shard,
  shardTag,
  WHOLE,
  writeStatus,
} from "./journal.js";
import { type GenerationSettings, GenerationSettingsSchema, settingsIdentity } from "./options.js";
import {
  loadSources,
  type PlannedDoc,
  planDocs,
  requestKey,
  shardDocs,
  type WorkItem,
  workItems,
} from "./plan.js";
import { type EndpointState, RequestPolicy } from "./policy.js";
import { type PromptTemplate, renderPrompt, resolveTemplate, templateHash } from "./prompts/index.js";
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
  /** Stop adding source documents once their tokens reach this many (applies before sharding). */
  budgetSourceTokens?: number;
  /** Stop starting new documents once accepted output tokens reach this many (per generator and shard: divided by the shard count). */
  budgetOutputTokens?: number;
  maxDocs?: number;
  /** Chunk size for source-based styles (default 300 tokens). */
  chunkTokens?: number;
  /** Token counter (e.g. `(s) => tokenizer.encode(s).length`); default: a word-based estimate. */
  countTokens?: CountTokens;
  /** Identity of the token counter (e.g. the tokenizer's sha256), pinned in the folder manifest. */
  tokenizerId?: string;
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
  /** Failed attempts per request beyond the first (timeouts, 5xx, malformed responses; default 6). */
  retries?: number;
  /** Re-asks of an empty answer (default 3). */
  retryEmpty?: number;
  retryTruncated?: boolean;
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  timeoutMs?: number;
  /** Failed attempts in a row after which an endpoint's breaker opens and cools down (default 10). */
  breakAfter?: number;
  /** Give an endpoint up after this long without a success (default 5 minutes). */
  stallTimeoutMs?: number;
  /** llama.cpp threads for gguf generators (default 2). */
  threads?: number;
  /** Generate only this slice of the planned documents (its own journal, lock and parts). */
  shard?: Shard;
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
  shard: string;
  requests: {
    planned: number;
    alreadyDone: number;
    completed: number;
    failed: number;
    retries: number;
    /** 429 / 503+Retry-After answers (back-pressure, not failures). */
    backpressure: number;
    /** Requests asked again after an empty (or truncated) answer. */
    reasked: number;
  };
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
  /** Set when the run stopped early (breaker, write error, abort). */
  stoppedBy?: string;
  /** True when every planned document of this shard has all its requests answered. */
  complete: boolean;
  /** Files whose torn tail was truncated before resuming. */
  repaired: string[];
  warnings: string[];
}

export interface GenerationSummary {
  style: string;
  templateSha256: string;
  corpus: string;
  seed: number;
  sourceDocs: number;
  sourceTokens: number;
  badRecords: number;
  shard: string;
  generators: GeneratorSummary[];
  /** Every generator complete: no failed request, no incomplete document, no early stop. */
  complete: boolean;
}

/** A generation that ran but left work undone; the CLI prints the summary and exits non-zero. */
export class GenerationIncompleteError extends SynthmixError {
  constructor(readonly summary: GenerationSummary) {
    const parts = summary.generators
      .filter((g) => !g.complete)
      .map(
        (g) =>
          `${g.generator}: ${g.requests.failed} requests failed, ${g.docsIncomplete} documents incomplete${g.stoppedBy ? ` (stopped: ${g.stoppedBy})` : ""}`,
      );
    super("GENERATION_INCOMPLETE", `generation incomplete: ${parts.join("; ")}`, {
      hint: "everything that succeeded is saved; rerun the same command to retry only the missing requests",
    });
  }
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

function checkNames(groups: GeneratorSpec[][], template: PromptTemplate): void {
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
}

/** Parse the flat library options through the one settings schema (every default lives there). */
export function parseSettings(opts: GenerationOptions): GenerationSettings {
  // Every settings field except params is a flat library option of the same name: take them from the
  // schema itself, so a new setting cannot be forgotten here.
  const flat = Object.keys(GenerationSettingsSchema.shape).filter((k) => k !== "params");
  const given = opts as unknown as Record<string, unknown>;
  const params = Object.fromEntries(Object.entries(opts.params ?? {}).filter(([, v]) => v !== undefined));
  try {
    return GenerationSettingsSchema.parse({
      ...Object.fromEntries(flat.filter((k) => given[k] !== undefined).map((k) => [k, given[k]])),
      params,
    });
  } catch (e) {
    const issues = (e as { issues?: { path: (string | number)[]; message: string }[] }).issues;
    throw new SynthmixError(
      "GENERATE_OPTIONS",
      `bad generation options: ${issues?.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ") ?? (e as Error).message}`,
    );
  }
}

/**
 * Generate synthetic documents from a corpus with one or more generators. Resumable and idempotent:
 * every request has a key; raw answers are journaled (fsync'd) under `<out>/chunks/` as they arrive and
 * finished documents are appended to `<out>/part-*.jsonl`; a rerun skips both. Returns a summary whose
 * `complete` says whether anything is left to do (failed requests, incomplete documents, a stop).
 */
export async function runGeneration(opts: GenerationOptions): Promise<GenerationSummary> {
  const template = typeof opts.style === "string" ? resolveTemplate(opts.style) : opts.style;
  const tHash = templateHash(template);
  const settings = parseSettings(opts);
  const count = opts.countTokens ?? estimateTokens;
  const shard = opts.shard ?? WHOLE;
  // Check generator specs before reading anything, so a typo fails fast.
  const groups = groupGenerators(opts.generators);
  checkNames(groups, template);
  const { docs, bad } = await loadSources(opts.workspace, opts.corpusName, !!opts.skipBadRecords);
  if (docs.length === 0) {
    throw new SynthmixError("NO_SOURCES", `corpus ${opts.corpusName} has no usable training documents`);
  }
  const { planned, sourceTokens } = planDocs(docs, template, {
    seed: settings.seed,
    corpusName: opts.corpusName,
    maxDocs: opts.maxDocs,
    budgetSourceTokens: opts.budgetSourceTokens,
    chunkTokens: settings.chunkTokens,
    keywords: settings.keywords,
    audiences: settings.audiences,
    count,
  });
  const mine = shardDocs(planned, shard);
  const settled = await Promise.allSettled(
    groups.map((specs) =>
      runOneGenerator(specs, { opts, settings, template, tHash, planned: mine, count, shard }),
    ),
  );
  const failedGen = settled.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failedGen) throw failedGen.reason;
  const results = settled.map((r) => (r as PromiseFulfilledResult<GeneratorSummary>).value);
  return {
    style: template.name,
    templateSha256: tHash,
    corpus: opts.corpusName,
    seed: settings.seed,
    sourceDocs: mine.length,
    sourceTokens,
    badRecords: bad,
    shard: `${shard.index}/${shard.count}`,
    generators: results,
    complete: results.every((g) => g.complete),
  };
}

interface GenContext {
  opts: GenerationOptions;
  settings: GenerationSettings;
  template: PromptTemplate;
  tHash: string;
  planned: PlannedDoc[];
  count: CountTokens;
  shard: Shard;
}

interface DocState {
  p: PlannedDoc;
  items: WorkItem[];
  extra?: Record<string, unknown>;
  /** Final answer per chunk (undefined: still to ask). */
  results: (JournalRec | undefined)[];
  /** Next try index per chunk (after journaled empty answers). */
  nextTry: number[];
  pending: number;
  started?: boolean;
}

function emptySummary(
  spec0: GeneratorSpec,
  specs: GeneratorSpec[],
  outDir: string,
  shard: Shard,
): GeneratorSummary {
  return {
    generator: generatorName(spec0),
    backend: spec0.backend,
    model: spec0.model,
    endpoints: specs.map((s) => s.baseUrl ?? s.model),
    outDir,
    shard: `${shard.index}/${shard.count}`,
    requests: {
      planned: 0,
      alreadyDone: 0,
      completed: 0,
      failed: 0,
      retries: 0,
      backpressure: 0,
      reasked: 0,
    },
    accepted: 0,
    rejected: {},
    docsWritten: 0,
    docsIncomplete: 0,
    tokens: { prompt: 0, completion: 0, acceptedOutput: 0 },
    elapsedSec: 0,
    requestsPerSec: 0,
    outputTokensPerSec: 0,
    complete: false,
    repaired: [],
    warnings: [],
  };
}

/** This shard's own files only: other shards may be writing theirs right now. */
function repairOwnFiles(outDir: string, journalDir: string, shard: Shard): string[] {
  const tag = shardTag(shard);
  const out: string[] = [];
  for (const f of [...partFiles(journalDir, tag), ...partFiles(outDir, tag)]) {
    try {
      if (repairJsonlTail(f) > 0) out.push(f);
    } catch (e) {
      throw fsError(e, f, "repair");
    }
  }
  return out;
}

/** Resume state: which requests are answered for good, which are still to ask (and at which try). */
function buildStates(
  ctx: GenContext,
  spec0: GeneratorSpec,
  journal: Map<string, JournalRec[]>,
  written: Map<string, number>,
  summary: GeneratorSummary,
): DocState[] {
  const { settings, template, tHash } = ctx;
  const states: DocState[] = [];
  for (const p of ctx.planned) {
    if (written.has(p.doc.id)) {
      summary.requests.alreadyDone += p.units.length;
      continue;
    }
    const { items, extra } = workItems(p, (u) => requestKey(template, tHash, spec0, settings.params, u));
    const st: DocState = { p, items, extra, results: [], nextTry: [], pending: 0 };
    for (const it of items) {
      const recs = journal.get(it.key) ?? [];
      const last = recs.at(-1);
      const tries = (last?.try ?? -1) + 1;
      const final =
        last && (!wantsRetry(last, settings.retryTruncated) || tries > settings.retryEmpty)
          ? last
          : undefined;
      st.results.push(final);
      st.nextTry.push(last ? tries : 0);
      if (!final) st.pending++;
    }
    summary.requests.alreadyDone += items.length - st.pending;
    summary.requests.planned += st.pending;
    states.push(st);
  }
  return states;
}

/** What an answer must pass to be accepted (the same rules at generation and at assembly). */
function acceptanceOptions(ctx: GenContext): CleanupOptions {
  const { settings, template, count } = ctx;
  return {
    style: template.name,
    stripMarkdown: settings.stripMarkdown ?? template.stripMarkdown ?? false,
    minTokens: settings.minOutputTokens,
    maxTokens: settings.maxOutputTokens,
    countTokens: count,
    lenient: settings.lenient,
  };
}

/** Accepted output tokens of this plan's answers already in the journal (from earlier runs of the shard). */
function journaledAcceptedTokens(
  ctx: GenContext,
  spec0: GeneratorSpec,
  journal: Map<string, JournalRec[]>,
): number {
  const { settings, template, tHash, count } = ctx;
  const acceptance = acceptanceOptions(ctx);
  let n = 0;
  for (const p of ctx.planned) {
    const { items } = workItems(p, (u) => requestKey(template, tHash, spec0, settings.params, u));
    for (const it of items) {
      const last = journal.get(it.key)?.at(-1);
      const v = last ? judge(last, acceptance) : undefined;
      if (v?.ok) n += count(v.text);
    }
  }
  return n;
}

async function runOneGenerator(specs: GeneratorSpec[], ctx: GenContext): Promise<GeneratorSummary> {
  const { opts, settings, template, tHash, shard } = ctx;
  const spec0 = specs[0];
  const gname = generatorName(spec0);
  const outDir = join(opts.workspace, "synthetic", `${template.name}-${gname}`);
  const journalDir = join(outDir, "chunks");
  const summary = emptySummary(spec0, specs, outDir, shard);
  // Before any request: the folders exist and are writable, nobody else writes this shard, and the
  // folder was made with these settings.
  checkWritable([outDir, journalDir]);
  const release = acquireLock(outDir, shard);
  try {
    checkManifest(outDir, {
      generator: { backend: spec0.backend, model: spec0.model, mode: spec0.mode ?? "chat" },
      style: template.name,
      templateVersion: template.version,
      templateSha256: tHash,
      corpus: opts.corpusName,
      tokenizer: opts.tokenizerId ?? (opts.countTokens ? "custom" : "word-estimate"),
      settings: settingsIdentity(settings),
    });
    summary.repaired = repairOwnFiles(outDir, journalDir, shard);
    const journal = await readJournal(journalDir);
    const written = await readWritten(outDir);
    const states = buildStates(ctx, spec0, journal, written, summary);
    const prior = journaledAcceptedTokens(ctx, spec0, journal);
    await dispatch(specs, ctx, states, summary, outDir, journalDir, prior);
    return summary;
  } finally {
    release();
  }
}

async function dispatch(
  specs: GeneratorSpec[],
  ctx: GenContext,
  states: DocState[],
  summary: GeneratorSummary,
  outDir: string,
  journalDir: string,
  /** Output tokens accepted by earlier runs of this shard: they count against the budget. */
  priorAcceptedTokens: number,
): Promise<void> {
  const d = new Dispatch(specs, ctx, summary, outDir, journalDir, priorAcceptedTokens);
  try {
    await d.schedule(states);
  } finally {
    await d.close(states);
  }
  if (d.fatal) throw d.fatal;
}

type AnswerMeta = { attempts: number; endpoint: string; latencyMs: number };

/**
 * One generator's requests: hands out endpoint slots to the documents' missing requests in order,
 * journals every answer, writes each document when its last chunk is in, and fills the summary.
 */
class Dispatch {
  readonly policy: RequestPolicy;
  fatal: Error | undefined;
  private readonly spec0: GeneratorSpec;
  private readonly acceptance: CleanupOptions;
  private readonly assembleCtx: Parameters<typeof assembleDoc>[4];
  private readonly journalOut: BatchedAppender;
  private readonly docsOut: BatchedAppender;
  private readonly progress: Progress;
  private readonly budget: number | undefined;
  private readonly inflight = new Set<Promise<void>>();
  private readonly t0 = Date.now();
  private readonly onOuterAbort = () => this.policy.abort.abort();
  private budgetReached = false;
  /**
   * Accepted output tokens, counting what earlier runs of this shard accepted, so a rerun stops where
   * one uninterrupted run would have stopped instead of generating the rest of the plan.
   */
  private acceptedOut: number;
  private judged = 0;
  private judgedOk = 0;
  private zeroPrompt = 0;

  constructor(
    specs: GeneratorSpec[],
    private readonly ctx: GenContext,
    private readonly summary: GeneratorSummary,
    private readonly outDir: string,
    journalDir: string,
    /** Output tokens accepted by earlier runs of this shard: they count against the budget. */
    priorAcceptedTokens: number,
  ) {
    const { opts, settings, template, tHash, count, shard } = ctx;
    this.spec0 = specs[0];
    this.acceptedOut = priorAcceptedTokens;
    this.acceptance = acceptanceOptions(ctx);
    this.assembleCtx = {
      styleName: template.name,
      generatorName: summary.generator,
      generator: { backend: this.spec0.backend, model: this.spec0.model, params: { ...settings.params } },
      prompt: { style: template.name, version: template.version, sha256: tHash },
      acceptance: this.acceptance,
      count,
    };
    this.policy = new RequestPolicy(
      specs.map((s) => createEndpoint(s, { timeoutMs: settings.timeoutMs, threads: settings.threads })),
      {
        retries: settings.retries,
        backoffBaseMs: settings.backoffBaseMs,
        backoffMaxMs: settings.backoffMaxMs,
        breakAfter: settings.breakAfter,
        stallTimeoutMs: settings.stallTimeoutMs,
        attemptTimeoutMs: settings.timeoutMs,
      },
    );
    const stop = (e: Error) => this.stop(e);
    this.journalOut = new BatchedAppender(join(journalDir, newPartName(shard)), stop);
    this.docsOut = new BatchedAppender(join(outDir, newPartName(shard)), stop);
    opts.signal?.addEventListener("abort", this.onOuterAbort, { once: true });
    if (opts.signal?.aborted) this.policy.abort.abort();
    this.budget =
      opts.budgetOutputTokens === undefined ? undefined : opts.budgetOutputTokens / Math.max(1, shard.count);
    this.progress = new Progress(
      `generate ${template.name} ${summary.generator}${shard.count > 1 ? ` shard ${shard.index}/${shard.count}` : ""}`,
      { total: summary.requests.planned, unit: "req", mode: opts.progress },
    );
    if (summary.repaired.length) this.progress.log(`repaired torn tails: ${summary.repaired.join(", ")}`);
  }

  /** Stop everything at the first fatal error (kept for the caller). */
  stop(e: Error): void {
    this.fatal ??= e;
    this.policy.abort.abort();
  }

  private get stopped(): boolean {
    return this.fatal !== undefined || this.policy.abort.signal.aborted;
  }

  /** Start every missing request, document by document, as endpoint slots free up. */
  async schedule(states: DocState[]): Promise<void> {
    // Documents whose requests were all journaled before a kill only need their record written.
    for (const st of states) if (st.pending === 0) this.finishDoc(st);
    for (const st of states) {
      if (st.pending > 0 && !(await this.startDoc(st))) break;
    }
    await Promise.all(this.inflight);
  }

  /** Start one document's missing requests; false when the run stops (error, abort, stall, budget). */
  private async startDoc(st: DocState): Promise<boolean> {
    let first = true;
    for (const item of st.items) {
      if (st.results[item.chunk]) continue;
      if (this.stopped) return false;
      const slot = await this.policy.acquire();
      if (!slot) {
        if (!this.policy.abort.signal.aborted || this.policy.stalled)
          this.stop(stalledError(this.policy, this.summary.generator));
        return false;
      }
      // Checked after waiting for a slot so the budget sees every finished request (it overshoots by
      // at most the requests in flight); a started document is always finished. The slot is freed
      // before the request's answer is counted (a few microtasks later): one macrotask turn lets the
      // count land first, whatever the promise chain's length.
      if (first && this.budget !== undefined) {
        await new Promise<void>((r) => setImmediate(r));
        if (this.stopped || this.acceptedOut >= this.budget) {
          this.policy.giveBack(slot);
          this.budgetReached ||= !this.stopped;
          return false;
        }
      }
      first = false;
      st.started = true;
      const p = this.runItem(item, st, slot).catch((e) => this.stop(e as Error));
      this.inflight.add(p);
      p.finally(() => this.inflight.delete(p));
    }
    return true;
  }

  /** One chunk's request, re-asked (with the seed moved on) after an empty or, if asked, truncated answer. */
  private async runItem(item: WorkItem, st: DocState, first: EndpointState): Promise<void> {
    const { template, settings } = this.ctx;
    const params = settings.params;
    let slot: EndpointState | undefined = first;
    let tryN = st.nextTry[item.chunk];
    const prompt = renderPrompt(template, item.vars);
    for (;;) {
      // A re-ask after an empty answer needs another sample: vary the seed deterministically.
      const p = tryN === 0 || params.seed === undefined ? params : { ...params, seed: params.seed + tryN };
      const out = await this.policy.run(
        (ep, signal) =>
          ep.generate({ id: item.key, messages: prompt.messages, prompt: prompt.prompt, params: p, signal }),
        slot,
      );
      slot = undefined;
      if (!out.ok) {
        if (!out.aborted) this.onFailed(out.error);
        return;
      }
      const rec = this.onAnswer(item, out.res, tryN, out);
      if (wantsRetry(rec, settings.retryTruncated) && tryN < settings.retryEmpty) {
        tryN++;
        this.summary.requests.reasked++;
        continue;
      }
      st.results[item.chunk] = rec;
      st.pending--;
      this.checkAcceptRate(rec, out.endpoint);
      if (st.pending === 0) this.finishDoc(st);
      this.tickProgress();
      return;
    }
  }

  private onFailed(error: Error): void {
    const { summary } = this;
    summary.requests.failed++;
    summary.rejected.request_failed = (summary.rejected.request_failed ?? 0) + 1;
    if (summary.requests.failed <= 5) this.progress.log(`request failed: ${error.message}`);
    this.tickProgress();
  }

  /** Journal the raw answer and count its tokens (acceptance is judged at assembly). */
  private onAnswer(item: WorkItem, res: GenResponse, tryN: number, meta: AnswerMeta): JournalRec {
    const rec: JournalRec = {
      key: item.key,
      doc: item.doc.id,
      chunk: item.chunk,
      chunks: item.chunks,
      parent: item.parent,
      raw: res.text,
      finish_reason: res.finishReason,
      usage: res.usage,
      latency_ms: Math.round(meta.latencyMs * 10) / 10,
      endpoint: meta.endpoint,
      attempts: meta.attempts,
      try: tryN,
    };
    this.journalOut.push(rec);
    const { summary } = this;
    summary.requests.completed++;
    summary.tokens.prompt += res.usage?.prompt_tokens ?? 0;
    summary.tokens.completion += res.usage?.completion_tokens ?? 0;
    if (res.usage && res.usage.prompt_tokens === 0 && this.zeroPrompt++ === 0) {
      const w = `${meta.endpoint} reports 0 prompt tokens: it is probably ignoring the prompt (e.g. chat messages sent to a model without a chat template; use openai-completions: or a chat model)`;
      summary.warnings.push(w);
      this.progress.log(`warning: ${w}`);
    }
    return rec;
  }

  /** Count accepted output tokens; stop when, after 50 answers, too few are accepted. */
  private checkAcceptRate(rec: JournalRec, endpoint: string): void {
    const v = judge(rec, this.acceptance);
    this.judged++;
    if (v.ok) {
      this.judgedOk++;
      const n = this.ctx.count(v.text);
      this.summary.tokens.acceptedOutput += n;
      this.acceptedOut += n;
    } else if (this.judged >= 50 && this.judgedOk / this.judged < this.ctx.settings.minAcceptRate) {
      this.stop(
        new SynthmixError(
          "GENERATION_REJECTED",
          `${endpoint}: ${this.judgedOk} of ${this.judged} outputs accepted (last rejection: ${v.reason}); stopping`,
          {
            hint: "check the generator and the prompt template (e.g. max_tokens too small, a base model given chat prompts); completed outputs are kept and a rerun resumes",
          },
        ),
      );
    }
  }

  private finishDoc(st: DocState): void {
    const a = assembleDoc(
      st.p.doc,
      st.items.map((i) => i.key),
      st.results as JournalRec[],
      st.extra,
      this.assembleCtx,
    );
    const { summary } = this;
    summary.accepted += a.accepted;
    for (const [k, v] of Object.entries(a.rejected))
      summary.rejected[k as RejectReason] = (summary.rejected[k as RejectReason] ?? 0) + (v ?? 0);
    if (!a.doc) return;
    this.docsOut.push(a.doc);
    summary.docsWritten++;
  }

  private tickProgress(): void {
    const el = Math.max((Date.now() - this.t0) / 1000, 1e-3);
    this.progress.tick(1, {
      "out tok/s": this.summary.tokens.completion / el,
      ok: this.judgedOk,
      rej: this.judged - this.judgedOk,
      fail: this.summary.requests.failed,
    });
  }

  /** Wait for what is in flight, close the files and the endpoints, fill the summary, write the status. */
  async close(states: DocState[]): Promise<void> {
    const { opts } = this.ctx;
    opts.signal?.removeEventListener("abort", this.onOuterAbort);
    if (this.fatal) this.policy.abort.abort();
    await Promise.all(this.inflight);
    this.journalOut.close();
    this.docsOut.close();
    await this.policy.close();
    this.fillSummary(states);
    this.progress.finish();
    try {
      writeStatus(this.outDir, this.ctx.shard, {
        shard: this.summary.shard,
        complete: this.summary.complete,
        docsPlanned: this.ctx.planned.length,
        docsWritten: this.summary.docsWritten,
        docsIncomplete: this.summary.docsIncomplete,
        requestsFailed: this.summary.requests.failed,
        stoppedBy: this.summary.stoppedBy,
        finished: new Date().toISOString(),
      });
    } catch (e) {
      this.fatal ??= fsError(e, this.outDir);
    }
  }

  private fillSummary(states: DocState[]): void {
    const { summary, policy } = this;
    summary.requests.retries = policy.stats.retries;
    summary.requests.backpressure = policy.stats.backpressure;
    summary.elapsedSec = (Date.now() - this.t0) / 1000;
    summary.requestsPerSec = summary.requests.completed / Math.max(summary.elapsedSec, 1e-3);
    summary.outputTokensPerSec = summary.tokens.completion / Math.max(summary.elapsedSec, 1e-3);
    const pin = this.spec0.pricePerMInput;
    const pout = this.spec0.pricePerMOutput;
    if (pin !== undefined || pout !== undefined) {
      summary.costUsd = (summary.tokens.prompt * (pin ?? 0) + summary.tokens.completion * (pout ?? 0)) / 1e6;
    }
    // A budget stop leaves unstarted documents by design; any other stop leaves them undone.
    summary.docsIncomplete = states.filter(
      (st) => st.pending > 0 && (st.started || !this.budgetReached),
    ).length;
    if (this.fatal) summary.stoppedBy = this.fatal.message;
    else if (this.ctx.opts.signal?.aborted) summary.stoppedBy = "aborted";
    summary.complete = !summary.stoppedBy && summary.requests.failed === 0 && summary.docsIncomplete === 0;
  }
}

function stalledError(policy: RequestPolicy, gname: string): SynthmixError {
  return new SynthmixError(
    "CIRCUIT_OPEN",
    `generator ${gname}: every endpoint has stopped answering: ${policy.describeDead()}`,
    {
      hint: "check that the server is up and the model name is right (raise --stall-timeout to wait longer for restarts); completed outputs are saved, rerun to resume",
    },
  );
}

/** One human-readable block for the CLI. */
export function formatSummary(s: GenerationSummary): string {
  const lines = [
    `style ${s.style} (template ${s.templateSha256.slice(0, 12)}), corpus ${s.corpus}, seed ${s.seed}: ` +
      `${s.sourceDocs} source docs${s.shard !== "0/1" ? ` (shard ${s.shard})` : ""}, ${fmtNum(s.sourceTokens)} source tokens${s.badRecords ? `, ${s.badRecords} bad records skipped` : ""}`,
  ];
  for (const g of s.generators) {
    const rej = Object.entries(g.rejected)
      .map(([k, v]) => `${k} ${v}`)
      .join(", ");
    lines.push(
      `  ${g.generator} -> ${g.outDir}\n` +
        `    requests: ${g.requests.completed} done, ${g.requests.alreadyDone} already done, ${g.requests.failed} failed, ${g.requests.retries} retries, ${g.requests.backpressure} back-pressure (429/503), ${g.requests.reasked} re-asked after empty answers\n` +
        `    accepted ${g.accepted}, rejected: ${rej || "none"}; documents written ${g.docsWritten}` +
        (g.docsIncomplete ? `, ${g.docsIncomplete} incomplete (rerun to resume)` : "") +
        (g.stoppedBy ? `\n    stopped: ${g.stoppedBy}` : "") +
        (g.repaired.length ? `\n    repaired torn tails of ${g.repaired.length} file(s)` : "") +
        g.warnings.map((w) => `\n    warning: ${w}`).join("") +
        `\n` +
        `    tokens: prompt ${fmtNum(g.tokens.prompt)}, completion ${fmtNum(g.tokens.completion)}, accepted output ${fmtNum(g.tokens.acceptedOutput)}` +
        `; ${fmtNum(g.requestsPerSec)} req/s, ${fmtNum(g.outputTokensPerSec)} out tok/s` +
        (g.costUsd !== undefined ? `; cost $${g.costUsd.toFixed(4)}` : ""),
    );
  }
  return lines.join("\n");
}
