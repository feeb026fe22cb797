import { createHash } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";

export interface FakeCall {
  n: number;
  body: {
    model?: string;
    messages?: { role: string; content: string }[];
    prompt?: string;
    max_tokens?: number;
  };
}

/** What the fake answers for call n: a status + body, raw text, or "hang" (never answers). */
export type FakeReply =
  | { status?: number; json?: unknown; text?: string; headers?: Record<string, string>; delayMs?: number }
  | "hang";

export function okReply(content: string, finish = "stop"): FakeReply {
  return {
    json: {
      choices: [{ index: 0, message: { role: "assistant", content }, text: content, finish_reason: finish }],
      usage: { prompt_tokens: 10, completion_tokens: content.split(/\s+/).length },
    },
  };
}

/** A loopback OpenAI-compatible fake whose replies are scripted per call, recording peak concurrency. */
export async function startFake(reply: (call: FakeCall) => FakeReply) {
  let n = 0;
  let inflight = 0;
  const state = { calls: 0, peak: 0 };
  const hanging = new Set<ServerResponse>();
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const call: FakeCall = { n: n++, body: JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}") };
      state.calls++;
      inflight++;
      state.peak = Math.max(state.peak, inflight);
      const r = reply(call);
      if (r === "hang") {
        hanging.add(res);
        res.on("close", () => {
          inflight--;
          hanging.delete(res);
        });
        return;
      }
      const send = () => {
        inflight--;
        const text = r.text ?? JSON.stringify(r.json ?? {});
        res.writeHead(r.status ?? 200, { "content-type": "application/json", ...r.headers });
        res.end(text);
      };
      if (r.delayMs) setTimeout(send, r.delayMs);
      else send();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const addr = server.address();
  const port = typeof addr === "object" && addr ? addr.port : 0;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    state,
    close: () =>
      new Promise<void>((resolve) => {
        for (const h of hanging) h.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

// ---------------------------------------------------------------------------------------------
// A deterministic fault-injecting OpenAI-compatible server

export type FaultKind = "500" | "429" | "503" | "badjson" | "nochoices" | "reset" | "hang" | "empty";

export interface FaultOptions {
  seed: number;
  /** Probability of each fault per attempt (decided from seed, prompt and the prompt's attempt number). */
  rates?: Partial<Record<FaultKind, number>>;
  /** Every request during `ms` after the `afterCalls`-th call gets 503 + Retry-After (a server restart). */
  outage?: { afterCalls: number; ms: number; retryAfterSec: number };
  /** This share of prompts (by hash) always gets HTTP 400: a permanent failure. */
  permanentRate?: number;
  /** Milliseconds before answering (lets several clients overlap). */
  delayMs?: number;
  /** Port to listen on (default: any free one). */
  port?: number;
}

function unit(...parts: (string | number)[]): number {
  return createHash("sha256").update(parts.join("\u0000")).digest().readUInt32BE(0) / 2 ** 32;
}

/** The source text a rephrasing prompt carries (its last paragraph), or the whole prompt. */
export function promptOf(body: FakeCall["body"]): string {
  return body.messages?.at(-1)?.content ?? body.prompt ?? "";
}

/**
 * Same seed + same prompt + same attempt number = same answer, whatever the timing or the client's
 * concurrency, so a test's outcome is fixed. Counts every call and every fault it injected.
 */
export async function startFaultServer(o: FaultOptions) {
  const attempts = new Map<string, number>();
  const injected: Partial<Record<FaultKind | "outage" | "permanent", number>> = {};
  const counts = { calls: 0, ok: 0 };
  const bump = (k: FaultKind | "outage" | "permanent") => {
    injected[k] = (injected[k] ?? 0) + 1;
  };
  let outageUntil = 0;
  let healthy = false;
  const hanging = new Set<ServerResponse>();
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}") as FakeCall["body"];
      const prompt = promptOf(body);
      const attempt = attempts.get(prompt) ?? 0;
      attempts.set(prompt, attempt + 1);
      counts.calls++;
      if (o.outage && counts.calls === o.outage.afterCalls) outageUntil = Date.now() + o.outage.ms;
      const json = (status: number, v: unknown, headers: Record<string, string> = {}) => {
        res.writeHead(status, { "content-type": "application/json", ...headers });
        res.end(JSON.stringify(v));
      };
      const answer = () => {
        if (!healthy && Date.now() < outageUntil) {
          bump("outage");
          return json(503, { error: "restarting" }, { "retry-after": String(o.outage?.retryAfterSec ?? 1) });
        }
        if (!healthy && o.permanentRate && unit(o.seed, "permanent", prompt) < o.permanentRate) {
          bump("permanent");
          return json(400, { error: { message: "this prompt is rejected" } });
        }
        const fault = healthy ? undefined : pickFault(o, prompt, attempt);
        if (fault) bump(fault);
        const text = `Rephrased: ${prompt.split("\n\n").at(-1)}`;
        const ok = (content: string) => ({
          choices: [
            { index: 0, message: { role: "assistant", content }, text: content, finish_reason: "stop" },
          ],
          usage: {
            prompt_tokens: prompt.split(/\s+/).length,
            completion_tokens: content.split(/\s+/).length,
          },
        });
        switch (fault) {
          case "500":
            return json(500, { error: "boom" });
          case "429":
            return json(429, { error: "slow down" }, { "retry-after": "0.05" });
          case "503":
            return json(503, { error: "busy" }, { "retry-after": "0.05" });
          case "badjson":
            res.writeHead(200, { "content-type": "application/json" });
            return res.end("<html>bad gateway");
          case "nochoices":
            return json(200, { choices: [] });
          case "reset": {
            // Headers and half a body, then the connection dies.
            res.writeHead(200, { "content-type": "application/json", "content-length": "1000" });
            res.write('{"choices": [');
            setTimeout(() => res.destroy(), 5);
            return;
          }
          case "hang":
            hanging.add(res);
            res.on("close", () => hanging.delete(res));
            return;
          case "empty":
            return json(200, ok(""));
          default:
            counts.ok++;
            return json(200, ok(text));
        }
      };
      if (o.delayMs) setTimeout(answer, o.delayMs);
      else answer();
    });
  });
  await new Promise<void>((resolve) => server.listen(o.port ?? 0, "127.0.0.1", resolve));
  const addr = server.address();
  const port = typeof addr === "object" && addr ? addr.port : 0;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    counts,
    injected,
    /** From now on, answer every request correctly (the "healthy server" of a rerun). */
    heal: () => {
      healthy = true;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const h of hanging) h.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function pickFault(o: FaultOptions, prompt: string, attempt: number): FaultKind | undefined {
  const u = unit(o.seed, prompt, attempt);
  let acc = 0;
  for (const [k, p] of Object.entries(o.rates ?? {}) as [FaultKind, number][]) {
    acc += p;
    if (u < acc) return k;
  }
  return undefined;
}
