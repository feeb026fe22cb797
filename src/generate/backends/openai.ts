import http from "node:http";
import https from "node:https";
import { type Endpoint, GenerationError, type GenRequest, type GenResponse } from "./types.js";

export interface OpenAIEndpointOptions {
  baseUrl: string;
  model: string;
  /** "chat" uses /chat/completions; "completions" uses /completions (base models). */
  mode?: "chat" | "completions";
  concurrency?: number;
  /** Name of the env var holding the API key (default OPENAI_API_KEY); sent as a Bearer token if set. */
  apiKeyEnv?: string;
  timeoutMs?: number;
  /** Extra body fields (e.g. vLLM's top_k), merged into every request. */
  extraBody?: Record<string, unknown>;
}

/** Parse Retry-After (seconds or an HTTP date) into milliseconds. */
export function parseRetryAfter(v: string | null): number | undefined {
  if (!v) return undefined;
  const s = Number(v);
  if (Number.isFinite(s)) return Math.max(0, s * 1000);
  const t = Date.parse(v);
  return Number.isFinite(t) ? Math.max(0, t - Date.now()) : undefined;
}

/**
 * An OpenAI-compatible endpoint (vLLM, SGLang, TGI, llama.cpp server, Ollama, hosted APIs) over the
 * node:http(s): no client library, so one code path serves every server and the bench can measure it.
 */
export class OpenAIEndpoint implements Endpoint {
  readonly label: string;
  readonly concurrency: number;
  private readonly url: string;
  private readonly headers: Record<string, string>;
  private readonly agent: http.Agent;
  private readonly target: URL;

  constructor(private readonly opts: OpenAIEndpointOptions) {
    const base = opts.baseUrl.replace(/\/+$/, "");
    this.url = `${base}/${opts.mode === "completions" ? "completions" : "chat/completions"}`;
    this.label = base;
    this.concurrency = opts.concurrency ?? 16;
    this.headers = { "content-type": "application/json" };
    const key = process.env[opts.apiKeyEnv ?? "OPENAI_API_KEY"];
    if (key) this.headers.authorization = `Bearer ${key}`;
    this.target = new URL(this.url);
    // node:http with a keep-alive pool of the concurrency's size: about half the CPU per request of
    // global fetch on Node 20 (measured in bench/generate.ts), which matters at thousands of req/s.
    const Agent = this.target.protocol === "https:" ? https.Agent : http.Agent;
    // No maxSockets: the request policy already bounds the requests in flight, and an agent at its
    // socket limit queues a request whose destroy() (our timeout) Node reports only once a socket is
    // free; a socket the agent never frees would then hold that request forever.
    this.agent = new Agent({ keepAlive: true, maxFreeSockets: this.concurrency });
  }

  private post(
    payload: string,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<{ status: number; retryAfter: string | null; text: string }> {
    return new Promise((resolve, reject) => {
      const mod = this.target.protocol === "https:" ? https : http;
      const req = mod.request(
        this.target,
        {
          method: "POST",
          agent: this.agent,
          headers: { ...this.headers, "content-length": Buffer.byteLength(payload) },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => {
            clearTimeout(timer);
            signal?.removeEventListener("abort", onAbort);
            const ra = res.headers["retry-after"];
            resolve({
              status: res.statusCode ?? 0,
              retryAfter: Array.isArray(ra) ? ra[0] : (ra ?? null),
              text: Buffer.concat(chunks).toString("utf8"),
            });
          });
          res.on("error", fail);
        },
      );
      let timedOut = false;
      function fail(e: Error) {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        reject(Object.assign(e, { timedOut }));
      }
      // The timeout and the abort settle the promise themselves: a destroyed request that has no
      // socket yet emits nothing until it gets one.
      const end = (e: Error) => {
        req.destroy(e);
        fail(e);
      };
      const onAbort = () => end(new Error("aborted"));
      const timer = setTimeout(() => {
        timedOut = true;
        end(new Error("timeout"));
      }, timeoutMs);
      signal?.addEventListener("abort", onAbort, { once: true });
      req.on("error", fail);
      req.end(payload);
    });
  }

  async close(): Promise<void> {
    this.agent.destroy();
  }

  async generate(req: GenRequest): Promise<GenResponse> {
    const chat = this.opts.mode !== "completions";
    const body = {
      model: this.opts.model,
      ...(chat ? { messages: req.messages } : { prompt: req.prompt }),
      ...req.params,
      ...this.opts.extraBody,
    };
    const timeoutMs = this.opts.timeoutMs ?? 120_000;
    const where = `${this.url} (request ${req.id})`;
    let res: { status: number; retryAfter: string | null; text: string };
    try {
      res = await this.post(JSON.stringify(body), timeoutMs, req.signal);
    } catch (e) {
      const err = e as Error & { timedOut?: boolean; code?: string };
      if (err.timedOut) {
        throw new GenerationError(`${where}: timed out after ${timeoutMs} ms`, true, {
          endpoint: this.label,
        });
      }
      if (req.signal?.aborted)
        throw new GenerationError(`${where}: aborted`, false, { endpoint: this.label });
      throw new GenerationError(
        `${where}: connection failed (${err.code ?? err.message})`,
        true,
        { endpoint: this.label },
        { cause: e },
      );
    }
    const text = res.text;
    if (res.status < 200 || res.status >= 300) {
      const retryable = res.status === 429 || res.status === 408 || res.status >= 500;
      throw new GenerationError(
        `${where}: HTTP ${res.status} ${text.slice(0, 200).replace(/\s+/g, " ")}`,
        retryable,
        { status: res.status, retryAfterMs: parseRetryAfter(res.retryAfter), endpoint: this.label },
        res.status === 401 || res.status === 403
          ? { hint: "set the API key in OPENAI_API_KEY (or the configured env var)" }
          : undefined,
      );
    }
    let json: {
      choices?: { message?: { content?: string | null }; text?: string; finish_reason?: string }[];
      usage?: { prompt_tokens?: number; completion_tokens?: number };
    };
    try {
      json = JSON.parse(text);
    } catch {
      // A proxy or overloaded server can answer 200 with HTML or a torn body: worth a retry.
      throw new GenerationError(`${where}: malformed JSON in response: ${text.slice(0, 120)}`, true, {
        endpoint: this.label,
      });
    }
    const choice = json.choices?.[0];
    if (!choice)
      throw new GenerationError(`${where}: response has no choices`, true, { endpoint: this.label });
    const out = chat ? (choice.message?.content ?? "") : (choice.text ?? "");
    return {
      text: out,
      finishReason: choice.finish_reason,
      usage: json.usage
        ? {
            prompt_tokens: json.usage.prompt_tokens ?? 0,
            completion_tokens: json.usage.completion_tokens ?? 0,
          }
        : undefined,
    };
  }
}
