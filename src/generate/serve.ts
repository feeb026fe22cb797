import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { basename } from "node:path";
import { LlamaEndpoint } from "./backends/llama.js";
import type { GenRequest } from "./backends/types.js";

export interface ServeOptions {
  modelPath: string;
  port: number;
  host?: string;
  threads?: number;
  /** Parallel sequences (default 1: a 2-core machine gains nothing from more). */
  concurrency?: number;
  /** Model id reported by /v1/models and accepted in requests (default: file base name). */
  modelId?: string;
  log?: (line: string) => void;
  /** Largest accepted request body (default 4 MiB); larger ones get 413 without being buffered. */
  maxBodyBytes?: number;
}

export interface RunningServer {
  url: string;
  /** The model id /v1/models reports. */
  modelId: string;
  server: Server;
  close(): Promise<void>;
}

/**
 * A small OpenAI-compatible server over a local GGUF model: POST /v1/chat/completions,
 * POST /v1/completions (both with SSE streaming as the official clients expect), GET /v1/models.
 * Honest about what it does: chat messages for a model without a chat template are rendered into a
 * plain-text prompt (said in the log and in the `x-synthmix-prompt` header); unsupported parameters
 * (logprobs, tools, token-id prompts, streaming with n > 1) are refused with 400, unknown models with
 * 404, oversized bodies with 413.
 */
export async function startServer(opts: ServeOptions): Promise<RunningServer> {
  const endpoint = new LlamaEndpoint({
    modelPath: opts.modelPath,
    threads: opts.threads ?? 2,
    concurrency: opts.concurrency ?? 1,
  });
  await endpoint.load();
  const hasTemplate = await endpoint.hasChatTemplate();
  const modelId = opts.modelId ?? basename(opts.modelPath).replace(/\.gguf$/i, "");
  const maxBody = opts.maxBodyBytes ?? 4 << 20;
  if (!hasTemplate)
    opts.log?.(
      `${modelId} has no chat template: chat messages are rendered as plain text ("system\n\nuser\n\n") and completed`,
    );
  // node-llama-cpp hands out one sequence per request; queue requests beyond the sequence count.
  let inflight = 0;
  const waiters: (() => void)[] = [];
  let counter = 0;
  const ctx: ServeContext = {
    endpoint,
    modelId,
    hasTemplate,
    maxBody,
    created: Math.floor(Date.now() / 1000),
    log: opts.log,
    nextId: () => ++counter,
    acquire: async () => {
      while (inflight >= endpoint.concurrency) await new Promise<void>((r) => waiters.push(r));
      inflight++;
    },
    release: () => {
      inflight--;
      waiters.shift()?.();
    },
  };

  const server = createServer(async (req, res) => {
    try {
      await handle(ctx, req, res);
    } catch (e) {
      if (!res.headersSent) fail(res, 500, (e as Error).message, "server_error");
      else res.end();
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port, opts.host ?? "127.0.0.1", () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === "object" && addr ? addr.port : opts.port;
  return {
    url: `http://${opts.host ?? "127.0.0.1"}:${port}/v1`,
    modelId,
    server,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      await endpoint.close();
    },
  };
}

/** What every request handler needs: the model, the sequence queue and the request counter. */
interface ServeContext {
  endpoint: LlamaEndpoint;
  modelId: string;
  hasTemplate: boolean;
  maxBody: number;
  /** Server start (seconds), reported as the model's `created`. */
  created: number;
  log?: (line: string) => void;
  nextId: () => number;
  acquire: () => Promise<void>;
  release: () => void;
}

type Run = (
  prompt: string,
  k: number,
  onText?: (t: string) => void,
) => Promise<Awaited<ReturnType<LlamaEndpoint["generate"]>>>;

async function handle(ctx: ServeContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = (req.url ?? "/").split("?")[0].replace(/\/+$/, "");
  if (req.method === "GET" && (url === "/v1/models" || url === "/models")) {
    return send(res, 200, {
      object: "list",
      data: [{ id: ctx.modelId, object: "model", created: ctx.created, owned_by: "synthmix" }],
    });
  }
  if (req.method === "GET" && (url === "/health" || url === "")) return send(res, 200, { status: "ok" });
  const chat = url === "/v1/chat/completions" || url === "/chat/completions";
  const comp = url === "/v1/completions" || url === "/completions";
  if (req.method !== "POST" || (!chat && !comp)) return fail(res, 404, `no route ${req.method} ${url}`);
  const body = await readJson(req, res, ctx.maxBody);
  if (!body) return;
  const parsed = parseRequest(body, chat, ctx.modelId, ctx.hasTemplate);
  if ("error" in parsed) return fail(res, parsed.status, parsed.error, parsed.code);
  const id = `${chat ? "chatcmpl" : "cmpl"}-${ctx.nextId()}`;
  const abort = new AbortController();
  res.on("close", () => {
    if (!res.writableFinished) abort.abort();
  });
  if (!ctx.hasTemplate && chat) res.setHeader("x-synthmix-prompt", "plain-text rendering (no chat template)");
  const run: Run = async (prompt, k, onText) => {
    await ctx.acquire();
    try {
      return await ctx.endpoint.generate({
        id,
        messages: parsed.messages,
        prompt,
        params: {
          ...parsed.params,
          seed: parsed.params.seed === undefined ? undefined : parsed.params.seed + k,
        },
        signal: abort.signal,
        onText,
      });
    } finally {
      ctx.release();
    }
  };
  if (parsed.stream)
    return await streamAnswer(res, {
      id,
      chat,
      modelId: ctx.modelId,
      run,
      prompt: parsed.prompts[0],
      includeUsage: parsed.includeUsage,
    });
  const t0 = performance.now();
  const { choices, usage } = await completeAll(parsed, chat, run);
  ctx.log?.(
    `${id} ${url} ${usage.prompt_tokens}+${usage.completion_tokens} tokens ${(performance.now() - t0).toFixed(0)} ms`,
  );
  return send(res, 200, {
    id,
    object: chat ? "chat.completion" : "text_completion",
    created: Math.floor(Date.now() / 1000),
    model: ctx.modelId,
    choices,
    usage,
  });
}

/** The JSON body, or undefined after answering 413 (too large) or 400 (not JSON). */
async function readJson(
  req: IncomingMessage,
  res: ServerResponse,
  maxBody: number,
): Promise<Record<string, unknown> | undefined> {
  const raw = await readBody(req, maxBody);
  if (raw === undefined) {
    res.setHeader("connection", "close");
    fail(res, 413, `request body larger than ${maxBody} bytes`);
    return undefined;
  }
  try {
    return JSON.parse(raw);
  } catch {
    fail(res, 400, "request body is not valid JSON");
    return undefined;
  }
}

/** Every choice of a non-streaming request: n per prompt, in order; usage summed as OpenAI does. */
async function completeAll(parsed: ParsedRequest, chat: boolean, run: Run) {
  const choices: Record<string, unknown>[] = [];
  const usage = { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 };
  for (const [pi, prompt] of parsed.prompts.entries()) {
    for (let k = 0; k < parsed.n; k++) {
      const out = await run(prompt, k);
      // Every choice of one prompt shares the prompt: count it once per prompt, as OpenAI does.
      if (k === 0) usage.prompt_tokens += out.usage?.prompt_tokens ?? 0;
      usage.completion_tokens += out.usage?.completion_tokens ?? 0;
      const index = pi * parsed.n + k;
      const finish_reason = out.finishReason ?? "stop";
      choices.push(
        chat
          ? { index, message: { role: "assistant", content: out.text }, finish_reason, logprobs: null }
          : { index, text: out.text, finish_reason, logprobs: null },
      );
    }
  }
  usage.total_tokens = usage.prompt_tokens + usage.completion_tokens;
  return { choices, usage };
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

function fail(res: ServerResponse, status: number, message: string, code?: string): void {
  const type = status >= 500 ? "server_error" : "invalid_request_error";
  send(res, status, { error: { message, type, param: null, code: code ?? null } });
}

/** The body as text, or undefined when it exceeds `limit` (reading stops there: nothing large is held). */
function readBody(req: IncomingMessage, limit: number): Promise<string | undefined> {
  const declared = Number(req.headers["content-length"] ?? 0);
  if (declared > limit) {
    req.resume();
    return Promise.resolve(undefined);
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        chunks.length = 0;
        req.removeAllListeners("data");
        req.resume();
        resolve(undefined);
        return;
      }
      chunks.push(c);
    });
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

interface ParsedRequest {
  messages: GenRequest["messages"];
  prompts: string[];
  params: GenRequest["params"];
  n: number;
  stream: boolean;
  includeUsage: boolean;
}

type ParseResult = ParsedRequest | { error: string; status: number; code?: string };

const ROLES = new Set(["system", "user", "assistant", "developer"]);

/** For a model without a chat template: the messages as plain text, ending where the answer starts. */
export function renderPlainPrompt(messages: { role: string; content: string }[]): string {
  return `${messages.map((m) => m.content.trim()).join("\n\n")}\n\n`;
}

function messageText(content: unknown): string | undefined {
  if (typeof content === "string") return content;
  if (Array.isArray(content)) {
    // Content parts: text parts only (no images here).
    const texts = content.map((p) =>
      p && typeof p === "object" && (p as { type?: string }).type === "text"
        ? (p as { text?: string }).text
        : undefined,
    );
    return texts.every((t) => typeof t === "string") ? texts.join("") : undefined;
  }
  return undefined;
}

type Refusal = { error: string; status: number; code?: string };
const bad = (error: string): Refusal => ({ error, status: 400 });

/** Validate a request: everything honoured, or a 400/404 naming what is not supported. */
function parseRequest(
  body: Record<string, unknown>,
  chat: boolean,
  modelId: string,
  hasTemplate: boolean,
): ParseResult {
  const refused = refuseUnsupported(body, modelId);
  if (refused) return refused;
  const n = body.n === undefined || body.n === null ? 1 : body.n;
  if (typeof n !== "number" || !Number.isInteger(n) || n < 1 || n > 16)
    return bad("n must be an integer from 1 to 16");
  const stream = body.stream === true;
  if (stream && n > 1) return bad("stream with n > 1 is not supported by synthmix serve");
  const params = parseParams(body);
  if ("error" in params) return params;
  const streamOpts = body.stream_options as { include_usage?: boolean } | undefined;
  const base = { params, n, stream, includeUsage: streamOpts?.include_usage === true };
  const input = chat ? parseMessages(body.messages, hasTemplate) : parsePrompts(body.prompt, stream);
  if ("error" in input) return input;
  return { ...base, ...input };
}

/** 404 for another model; 400 for parameters synthmix serve does not implement. */
function refuseUnsupported(body: Record<string, unknown>, modelId: string): Refusal | undefined {
  if (body.model !== undefined && body.model !== modelId)
    return {
      error: `model "${String(body.model)}" not found; this server serves "${modelId}"`,
      status: 404,
      code: "model_not_found",
    };
  for (const k of ["logprobs", "top_logprobs", "tools", "functions", "echo", "suffix", "best_of"]) {
    const v = body[k];
    if (v !== undefined && v !== null && v !== false && !(k === "best_of" && v === 1))
      return bad(`${k} is not supported by synthmix serve`);
  }
  const rf = body.response_format as { type?: string } | undefined;
  if (rf && rf.type !== "text")
    return bad("response_format other than text is not supported by synthmix serve");
  return undefined;
}

/** Sampling parameters: temperature, top_p, max_tokens (alias max_completion_tokens, default 256), seed, stop. */
function parseParams(body: Record<string, unknown>): GenRequest["params"] | Refusal {
  const maxTok = body.max_completion_tokens ?? body.max_tokens;
  if (
    maxTok !== undefined &&
    maxTok !== null &&
    (typeof maxTok !== "number" || !Number.isInteger(maxTok) || maxTok < 1)
  )
    return bad("max_tokens / max_completion_tokens must be a positive integer");
  let stop: string[] | undefined;
  if (typeof body.stop === "string") stop = [body.stop];
  else if (Array.isArray(body.stop) && body.stop.every((x) => typeof x === "string"))
    stop = body.stop as string[];
  else if (body.stop !== undefined && body.stop !== null)
    return bad("stop must be a string or an array of strings");
  const num = (k: string) => (typeof body[k] === "number" ? (body[k] as number) : undefined);
  return {
    temperature: num("temperature"),
    top_p: num("top_p"),
    max_tokens: typeof maxTok === "number" ? maxTok : 256,
    seed: num("seed"),
    stop,
  };
}

/** Chat messages; without a chat template the model completes text, so it gets the conversation as text. */
function parseMessages(
  raw: unknown,
  hasTemplate: boolean,
): Pick<ParsedRequest, "messages" | "prompts"> | Refusal {
  if (!Array.isArray(raw) || raw.length === 0) return bad("messages must be a non-empty array");
  const messages: GenRequest["messages"] = [];
  for (const m of raw as { role?: string; content?: unknown }[]) {
    const text = messageText(m?.content);
    if (!m || !ROLES.has(m.role ?? "") || text === undefined)
      return bad("each message needs a role (system, user, assistant) and text content");
    messages.push({
      role: m.role === "developer" ? "system" : (m.role as "system" | "user" | "assistant"),
      content: text,
    });
  }
  if (!hasTemplate) return { messages: [], prompts: [renderPlainPrompt(messages)] };
  return { messages, prompts: [""] };
}

/** A completion prompt: a string or an array of strings (one choice set per prompt). */
function parsePrompts(p: unknown, stream: boolean): Pick<ParsedRequest, "messages" | "prompts"> | Refusal {
  let prompts: string[];
  if (typeof p === "string") prompts = [p];
  else if (Array.isArray(p) && p.length > 0 && p.every((x) => typeof x === "string")) prompts = p as string[];
  else
    return bad(
      "prompt must be a string or a non-empty array of strings (token-id prompts are not supported)",
    );
  if (stream && prompts.length > 1)
    return bad("stream with several prompts is not supported by synthmix serve");
  return { messages: [], prompts };
}

/** Server-sent events in OpenAI's chunk format, ending with `data: [DONE]`. */
async function streamAnswer(
  res: ServerResponse,
  o: {
    id: string;
    chat: boolean;
    modelId: string;
    prompt: string;
    includeUsage: boolean;
    run: Run;
  },
): Promise<void> {
  res.writeHead(200, {
    "content-type": "text/event-stream",
    "cache-control": "no-cache",
    connection: "keep-alive",
  });
  const created = Math.floor(Date.now() / 1000);
  const object = o.chat ? "chat.completion.chunk" : "text_completion";
  const event = (choices: unknown[], extra: Record<string, unknown> = {}) =>
    res.write(
      `data: ${JSON.stringify({ id: o.id, object, created, model: o.modelId, choices, ...extra })}\n\n`,
    );
  const piece = (text: string, finish: string | null, first = false) =>
    o.chat
      ? {
          index: 0,
          delta: first ? { role: "assistant", content: text } : text ? { content: text } : {},
          finish_reason: finish,
          logprobs: null,
        }
      : { index: 0, text, finish_reason: finish, logprobs: null };
  if (o.chat) event([piece("", null, true)]);
  const out = await o.run(o.prompt, 0, (t) => {
    if (t) event([piece(t, null)]);
  });
  event([piece("", out.finishReason ?? "stop")]);
  if (o.includeUsage) {
    const u = {
      prompt_tokens: out.usage?.prompt_tokens ?? 0,
      completion_tokens: out.usage?.completion_tokens ?? 0,
    };
    event([], { usage: { ...u, total_tokens: u.prompt_tokens + u.completion_tokens } });
  }
  res.end("data: [DONE]\n\n");
}
