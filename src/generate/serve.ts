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
}

export interface RunningServer {
  url: string;
  server: Server;
  close(): Promise<void>;
}

/**
 * A small OpenAI-compatible server over a local GGUF model: POST /v1/chat/completions,
 * POST /v1/completions, GET /v1/models. Enough for synthmix's HTTP backend, curl, and OpenAI clients,
 * so the HTTP path runs end to end on a machine with no GPU server (no streaming, n = 1).
 */
export async function startServer(opts: ServeOptions): Promise<RunningServer> {
  const endpoint = new LlamaEndpoint({
    modelPath: opts.modelPath,
    threads: opts.threads ?? 2,
    concurrency: opts.concurrency ?? 1,
  });
  await endpoint.load();
  const modelId = opts.modelId ?? basename(opts.modelPath).replace(/\.gguf$/i, "");
  const created = Math.floor(Date.now() / 1000);
  // node-llama-cpp hands out one sequence per request; queue requests beyond the sequence count.
  let inflight = 0;
  const waiters: (() => void)[] = [];
  const acquire = async () => {
    while (inflight >= endpoint.concurrency) await new Promise<void>((r) => waiters.push(r));
    inflight++;
  };
  const release = () => {
    inflight--;
    waiters.shift()?.();
  };
  let counter = 0;

  const send = (res: ServerResponse, status: number, body: unknown) => {
    const text = JSON.stringify(body);
    res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
    res.end(text);
  };
  const fail = (res: ServerResponse, status: number, message: string, type = "invalid_request_error") =>
    send(res, status, { error: { message, type } });

  const readBody = (req: IncomingMessage) =>
    new Promise<string>((resolve, reject) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
      req.on("error", reject);
    });

  const server = createServer(async (req, res) => {
    const url = (req.url ?? "/").split("?")[0].replace(/\/+$/, "");
    try {
      if (req.method === "GET" && (url === "/v1/models" || url === "/models")) {
        return send(res, 200, {
          object: "list",
          data: [{ id: modelId, object: "model", created, owned_by: "synthmix" }],
        });
      }
      if (req.method === "GET" && (url === "/health" || url === "")) return send(res, 200, { status: "ok" });
      const chat = url === "/v1/chat/completions" || url === "/chat/completions";
      const comp = url === "/v1/completions" || url === "/completions";
      if (req.method !== "POST" || (!chat && !comp)) return fail(res, 404, `no route ${req.method} ${url}`);
      let body: Record<string, unknown>;
      try {
        body = JSON.parse(await readBody(req));
      } catch {
        return fail(res, 400, "request body is not valid JSON");
      }
      if (body.stream) return fail(res, 400, "stream: true is not supported by synthmix serve");
      const messages = chat ? (body.messages as GenRequest["messages"]) : [];
      if (chat && (!Array.isArray(messages) || messages.length === 0))
        return fail(res, 400, "messages must be a non-empty array");
      const prompt = comp
        ? Array.isArray(body.prompt)
          ? String(body.prompt[0] ?? "")
          : String(body.prompt ?? "")
        : "";
      const id = `${chat ? "chatcmpl" : "cmpl"}-${++counter}`;
      const abort = new AbortController();
      res.on("close", () => {
        if (!res.writableFinished) abort.abort();
      });
      await acquire();
      const t0 = performance.now();
      let out: Awaited<ReturnType<LlamaEndpoint["generate"]>>;
      try {
        out = await endpoint.generate({
          id,
          messages: chat ? messages.map((m) => ({ role: m.role, content: String(m.content ?? "") })) : [],
          prompt,
          params: {
            temperature: typeof body.temperature === "number" ? body.temperature : undefined,
            top_p: typeof body.top_p === "number" ? body.top_p : undefined,
            max_tokens: typeof body.max_tokens === "number" ? body.max_tokens : 256,
            seed: typeof body.seed === "number" ? body.seed : undefined,
          },
          signal: abort.signal,
        });
      } finally {
        release();
      }
      const usage = {
        prompt_tokens: out.usage?.prompt_tokens ?? 0,
        completion_tokens: out.usage?.completion_tokens ?? 0,
        total_tokens: (out.usage?.prompt_tokens ?? 0) + (out.usage?.completion_tokens ?? 0),
      };
      opts.log?.(
        `${id} ${url} ${usage.prompt_tokens}+${usage.completion_tokens} tokens ${(performance.now() - t0).toFixed(0)} ms`,
      );
      const base = { id, created: Math.floor(Date.now() / 1000), model: modelId, usage };
      if (chat) {
        return send(res, 200, {
          ...base,
          object: "chat.completion",
          choices: [
            {
              index: 0,
              message: { role: "assistant", content: out.text },
              finish_reason: out.finishReason ?? "stop",
            },
          ],
        });
      }
      return send(res, 200, {
        ...base,
        object: "text_completion",
        choices: [{ index: 0, text: out.text, finish_reason: out.finishReason ?? "stop", logprobs: null }],
      });
    } catch (e) {
      if (!res.headersSent) fail(res, 500, (e as Error).message, "server_error");
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
    server,
    close: async () => {
      await new Promise<void>((r) => server.close(() => r()));
      await endpoint.close();
    },
  };
}
