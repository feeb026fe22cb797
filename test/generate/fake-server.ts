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
