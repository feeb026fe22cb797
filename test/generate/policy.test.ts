import assert from "node:assert/strict";
import { test } from "node:test";
import { type Endpoint, GenerationError, type GenResponse } from "../../src/generate/backends/types.js";
import { RequestPolicy, StalledError } from "../../src/generate/policy.js";

/** An endpoint whose answers are scripted per call, each after `delayMs`; records the peak of concurrent calls. */
function scripted(
  label: string,
  concurrency: number,
  answer: (n: number) => "ok" | GenerationError,
  delayMs = 2,
) {
  let n = 0;
  let inflight = 0;
  const stats = { calls: 0, peak: 0 };
  const ep: Endpoint = {
    label,
    concurrency,
    async generate(): Promise<GenResponse> {
      const k = n++;
      stats.calls++;
      inflight++;
      stats.peak = Math.max(stats.peak, inflight);
      await new Promise((r) => setTimeout(r, delayMs));
      inflight--;
      const a = answer(k);
      if (a === "ok") return { text: "ok", finishReason: "stop" };
      throw a;
    },
  };
  return { ep, stats };
}

const opts = {
  retries: 2,
  backoffBaseMs: 1,
  backoffMaxMs: 5,
  breakAfter: 3,
  stallTimeoutMs: 60_000,
  random: () => 0.5,
};
const err = (status: number, retryAfterMs?: number) =>
  new GenerationError(`HTTP ${status}`, status >= 500 || status === 429, { status, retryAfterMs });

async function runMany(p: RequestPolicy, n: number) {
  return Promise.all(
    Array.from({ length: n }, () =>
      p.run((ep, signal) => ep.generate({ id: "x", messages: [], prompt: "", params: {}, signal })),
    ),
  );
}

test("policy: 429s are back-pressure: no retry is spent, the concurrency limit halves, every request succeeds", async () => {
  const { ep } = scripted("a", 8, (k) => (k % 3 === 0 ? err(429) : "ok"));
  const p = new RequestPolicy([ep], { ...opts, retries: 0 });
  const out = await runMany(p, 30);
  assert.ok(out.every((o) => o.ok));
  assert.equal(p.stats.retries, 0);
  assert.ok(p.stats.backpressure >= 10);
  assert.ok(p.endpoints[0].limit < 8, `limit ${p.endpoints[0].limit}`);
  await p.close();
});

test("policy: the breaker opens after breakAfter failures, probes one request half-open, and closes on success", async () => {
  // 6 failures (the outage), then healthy.
  const { ep, stats } = scripted("b", 4, (k) => (k < 6 ? err(503) : "ok"));
  const p = new RequestPolicy([ep], { ...opts, retries: 10 });
  const states: string[] = [];
  const timer = setInterval(() => states.push(p.endpoints[0].state), 1);
  const out = await runMany(p, 8);
  clearInterval(timer);
  assert.ok(
    out.every((o) => o.ok),
    "no request lost to a short outage",
  );
  assert.ok(states.includes("open"), "the breaker opened");
  assert.equal(p.endpoints[0].state, "closed");
  assert.ok(stats.calls <= 8 + 6, `calls ${stats.calls}`);
  await p.close();
});

test("policy: a request fails for good after its retries; 4xx fails at once without moving the breaker", async () => {
  const { ep } = scripted("c", 1, () => err(500));
  const p = new RequestPolicy([ep], { ...opts, breakAfter: 100 });
  const [o] = await runMany(p, 1);
  assert.equal(o.ok, false);
  assert.equal(o.attempts, 3);
  const { ep: ep4 } = scripted("d", 1, () => err(400));
  const p4 = new RequestPolicy([ep4], opts);
  const out = await runMany(p4, 5);
  assert.ok(out.every((x) => !x.ok && x.attempts === 1));
  assert.equal(p4.endpoints[0].failuresInRow, 0);
  await p.close();
  await p4.close();
});

test("policy: an endpoint with no success for the stall timeout is given up, naming it and its last error", async () => {
  const { ep } = scripted("http://dead:8000/v1", 2, () => err(502));
  const p = new RequestPolicy([ep], { ...opts, retries: 1000, stallTimeoutMs: 100 });
  await assert.rejects(
    runMany(p, 4),
    (e: Error) =>
      e instanceof StalledError &&
      /http:\/\/dead:8000\/v1: no success for \d+ s/.test(e.message) &&
      /HTTP 502/.test(e.message),
  );
  await p.close();
});

test("policy: requests go to the healthy endpoint when another is down", async () => {
  const down = scripted("down", 2, () => err(503));
  const up = scripted("up", 2, () => "ok");
  const p = new RequestPolicy([down.ep, up.ep], { ...opts, retries: 5 });
  const out = await runMany(p, 20);
  assert.ok(out.every((o) => o.ok));
  assert.ok(up.stats.calls === 20 && down.stats.calls < 10, `up ${up.stats.calls} down ${down.stats.calls}`);
  await p.close();
});

test("policy: requests that never settle (an endpoint ignoring its signal) end in a StalledError after the stall timeout, not a hang", async () => {
  let calls = 0;
  const hung: Endpoint = {
    label: "http://hung:8000/v1",
    concurrency: 2,
    generate: () => {
      calls++;
      return new Promise<GenResponse>(() => {});
    },
  };
  const p = new RequestPolicy([hung], { ...opts, stallTimeoutMs: 150 });
  const t0 = Date.now();
  await assert.rejects(
    runMany(p, 5),
    (e: Error) =>
      e instanceof StalledError &&
      /http:\/\/hung:8000\/v1: no success for \d+ s/.test(e.message) &&
      /2 request\(s\) unanswered/.test(e.message),
  );
  assert.ok(Date.now() - t0 < 5_000, `gave up after ${Date.now() - t0} ms`);
  assert.equal(calls, 2, "only the slots' requests were sent");
  assert.equal(p.stalled, true);
  await p.close();
});

test("policy: the watchdog leaves an endpoint with nothing pending alone (idle is not stalled)", async () => {
  // Each answer takes 30 ms of a 60 ms stall timeout; the idle gap between the batches is 200 ms.
  const { ep, stats } = scripted("idle", 1, () => "ok", 30);
  const p = new RequestPolicy([ep], { ...opts, stallTimeoutMs: 60 });
  assert.ok((await runMany(p, 2)).every((o) => o.ok));
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(p.stalled, false);
  assert.ok((await runMany(p, 2)).every((o) => o.ok));
  assert.equal(stats.calls, 4);
  assert.equal(p.stalled, false);
  await p.close();
});

test("policy: an answer slower than the stall timeout but within the request timeout is waited for", async () => {
  const { ep } = scripted("slow", 1, () => "ok", 1_500);
  // Without the request timeout the watchdog would give up at max(50 ms, 1 s) < 1.5 s.
  const p = new RequestPolicy([ep], { ...opts, stallTimeoutMs: 50, attemptTimeoutMs: 2_000 });
  assert.ok((await runMany(p, 1)).every((o) => o.ok));
  assert.equal(p.stalled, false);
  await p.close();
});
