import assert from "node:assert/strict";
import { test } from "node:test";
import { OpenAIEndpoint } from "../../src/generate/backends/openai.js";
import { GenerationError } from "../../src/generate/backends/types.js";
import { startFake } from "./fake-server.js";

const ask = (ep: OpenAIEndpoint, signal?: AbortSignal) =>
  ep.generate({ id: "r", messages: [{ role: "user", content: "hi" }], prompt: "hi", params: {}, signal });

test("openai endpoint: an abort or a timeout settles the request at once, even beyond the endpoint's concurrency", async () => {
  // The server never answers. Node's agent used to queue the second request behind the first (its
  // maxSockets was the concurrency), and a destroyed queued request emits nothing until a socket is
  // free: the abort at 50 ms settled only when the first request timed out, and a socket the agent
  // never freed would have held it forever.
  const srv = await startFake(() => "hang");
  const ep = new OpenAIEndpoint({ baseUrl: srv.url, model: "m", concurrency: 1, timeoutMs: 3_000 });
  try {
    const first = ask(ep).catch((e) => e);
    const ctl = new AbortController();
    const t0 = Date.now();
    const second = ask(ep, ctl.signal).catch((e) => e);
    setTimeout(() => ctl.abort(), 50);
    const e2 = await second;
    assert.ok(e2 instanceof GenerationError && /aborted|connection failed/.test(e2.message), String(e2));
    assert.ok(Date.now() - t0 < 1_000, `the abort took ${Date.now() - t0} ms`);
    const fast = new OpenAIEndpoint({ baseUrl: srv.url, model: "m", concurrency: 1, timeoutMs: 100 });
    const t1 = Date.now();
    const e3 = await ask(fast).catch((e) => e);
    assert.ok(e3 instanceof GenerationError && /timed out after 100 ms/.test(e3.message), String(e3));
    assert.ok(e3.retryable, "a timeout is retryable");
    assert.ok(Date.now() - t1 < 1_000, `the timeout took ${Date.now() - t1} ms`);
    await fast.close();
    await ep.close();
    assert.ok((await first) instanceof GenerationError);
  } finally {
    await srv.close();
  }
});
