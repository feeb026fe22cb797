import { setMaxListeners } from "node:events";
import type { Endpoint, GenResponse } from "./backends/types.js";
import { GenerationError } from "./backends/types.js";

/**
 * The request policy: which endpoint gets a request, how many are in flight, what a failure means, and
 * when to give up. Testable alone (no files, no plan): give it endpoints and call `run`.
 *
 * - Back-pressure (429, or 503 with Retry-After: a server restarting says when to come back) is not a
 *   failure: the endpoint pauses until Retry-After and halves its concurrency limit (AIMD: +1 per
 *   `limit` successes back up to the configured concurrency). It uses no retry of the request.
 * - Failures (timeouts, 5xx, resets, malformed answers) count per request: a request fails for good
 *   after `retries` failed attempts. `breakAfter` failed attempts in a row open the endpoint's breaker:
 *   requests wait (spending no retries) while it cools down, then one probe goes through (half-open);
 *   a success closes it, a failure doubles the cool-down (up to 60 s).
 * - An endpoint is given up only when it has had no success for `stallTimeoutMs` (default minutes);
 *   when every endpoint is given up, `run` throws a StalledError naming the endpoint and its last error.
 *   A watchdog timer enforces this even when nothing fails: requests that never settle (a socket Node
 *   never hands out, a hung engine) give their endpoint up after the stall timeout like failures do,
 *   and once every endpoint is given up the in-flight requests are abandoned, never waited on forever.
 * - Non-retryable answers (400, 404, ...) fail the request at once; they say the request is bad, not
 *   that the server is down, so they do not move the breaker.
 */
export interface PolicyOptions {
  retries: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  breakAfter: number;
  stallTimeoutMs: number;
  /**
   * The longest one attempt may legitimately take (the endpoints' request timeout): the watchdog gives
   * an endpoint with requests in flight up only after max(stallTimeoutMs, this + 1 s), so a slow answer
   * under a timeout longer than the stall timeout is never cut short.
   */
  attemptTimeoutMs?: number;
  /** Back-pressure answers per request before it counts as failed (a guard against a server that only says 429). */
  maxBackpressure?: number;
  /** Random source for jitter (tests pass a seeded one). */
  random?: () => number;
  now?: () => number;
}

type BreakerState = "closed" | "open" | "half-open";

export interface EndpointState {
  ep: Endpoint;
  inflight: number;
  /** Current AIMD concurrency limit (fractional; floor is used, at least 1). */
  limit: number;
  state: BreakerState;
  failuresInRow: number;
  openUntil: number;
  pausedUntil: number;
  cooldownMs: number;
  lastSuccess: number;
  lastDecrease: number;
  lastError?: string;
  probing: boolean;
  dead: boolean;
  successes: number;
  failures: number;
  backpressure: number;
}

export class StalledError extends GenerationError {
  constructor(message: string) {
    super(
      message,
      false,
      {},
      {
        hint: "check that the server is up and the model name is right (raise --stall-timeout to wait longer for restarts); completed outputs are saved, rerun to resume",
      },
    );
    this.name = "StalledError";
  }
}

export type Outcome =
  | { ok: true; res: GenResponse; attempts: number; endpoint: string; latencyMs: number }
  | { ok: false; error: GenerationError; attempts: number; aborted?: boolean };

const MAX_COOLDOWN_MS = 60_000;

export class RequestPolicy {
  readonly endpoints: EndpointState[];
  private readonly waiters = new Set<() => void>();
  private timer?: NodeJS.Timeout;
  private timerAt = Number.POSITIVE_INFINITY;
  private readonly now: () => number;
  private readonly random: () => number;
  readonly abort = new AbortController();
  stats = { retries: 0, backpressure: 0 };
  /** Set when the watchdog gave every endpoint up while requests were pending (the run must stop). */
  stalled = false;
  private watchdog?: NodeJS.Timeout;
  private running = 0;

  constructor(
    endpoints: Endpoint[],
    private readonly opts: PolicyOptions,
  ) {
    this.now = opts.now ?? Date.now;
    this.random = opts.random ?? Math.random;
    const t = this.now();
    this.endpoints = endpoints.map((ep) => ({
      ep,
      inflight: 0,
      limit: ep.concurrency,
      state: "closed",
      failuresInRow: 0,
      openUntil: 0,
      pausedUntil: 0,
      cooldownMs: Math.max(opts.backoffBaseMs, 250),
      lastSuccess: t,
      lastDecrease: 0,
      probing: false,
      dead: false,
      successes: 0,
      failures: 0,
      backpressure: 0,
    }));
    // Every in-flight request listens on this one signal; thousands of listeners are expected.
    setMaxListeners(0, this.abort.signal);
    // Requests waiting for a slot must see the abort (nothing else would wake them).
    this.abort.signal.addEventListener("abort", () => this.wakeAll(), { once: true });
  }

  get capacity(): number {
    return this.endpoints.reduce((a, s) => a + (s.dead ? 0 : s.ep.concurrency), 0);
  }

  get allDead(): boolean {
    return this.endpoints.every((s) => s.dead);
  }

  /** "url: no success for 300 s; last error: ..." for every endpoint given up. */
  describeDead(): string {
    return this.endpoints
      .filter((s) => s.dead)
      .map(
        (s) =>
          `${s.ep.label}: no success for ${Math.round((this.now() - s.lastSuccess) / 1000)} s (${s.failures} failed attempts); last error: ${s.lastError ?? "?"}`,
      )
      .join("; ");
  }

  private pick(): EndpointState | undefined {
    const t = this.now();
    let best: EndpointState | undefined;
    let bestLoad = Number.POSITIVE_INFINITY;
    for (const s of this.endpoints) {
      if (s.dead) continue;
      if (s.state === "open" && t >= s.openUntil) s.state = "half-open";
      if (s.state === "open" || t < s.pausedUntil) continue;
      if (s.state === "half-open") {
        if (s.probing) continue;
        s.probing = true;
        s.inflight++;
        return s;
      }
      const cap = Math.max(1, Math.floor(s.limit));
      if (s.inflight >= cap) continue;
      const load = s.inflight / cap;
      if (load < bestLoad) {
        best = s;
        bestLoad = load;
      }
    }
    if (best) best.inflight++;
    return best;
  }

  /** The earliest moment an endpoint that is paused or open could take a request again. */
  private nextWake(): number {
    let at = Number.POSITIVE_INFINITY;
    for (const s of this.endpoints) {
      if (s.dead) continue;
      if (s.state === "open") at = Math.min(at, s.openUntil);
      else if (s.pausedUntil > this.now()) at = Math.min(at, s.pausedUntil);
    }
    return at;
  }

  private wakeAll(): void {
    const w = [...this.waiters];
    this.waiters.clear();
    for (const f of w) f();
  }

  private wakeOne(): void {
    const f = this.waiters.values().next().value;
    if (f) {
      this.waiters.delete(f);
      f();
    }
  }

  private armTimer(): void {
    const at = this.nextWake();
    if (!Number.isFinite(at) || at >= this.timerAt) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        this.timerAt = Number.POSITIVE_INFINITY;
        this.wakeAll();
      },
      Math.max(1, at - this.now()),
    );
  }

  /**
   * The stall check on a timer: `checkStall` otherwise runs only when an attempt fails, so requests that
   * never settle would hold the run forever. An endpoint is judged only while work is pending on it.
   * The timer keeps the process alive only while work is pending (a policy nobody closes never holds
   * a finished process; a request hung on no handle at all still gets its StalledError).
   */
  private watch(): void {
    if (this.watchdog) this.watchdog.ref();
    else {
      const every = Math.max(20, Math.min(this.opts.stallTimeoutMs / 4, 5_000));
      this.watchdog = setInterval(() => this.checkStalls(), every);
    }
  }

  /** Requests inside `run`, slots held, or callers waiting for one: the stall clock runs only then. */
  private get busy(): boolean {
    return this.running > 0 || this.waiters.size > 0 || this.endpoints.some((s) => s.inflight > 0);
  }

  /** Idle time is not a stall: "no success for the stall timeout" counts from when work resumed. */
  private resumeClock(): void {
    if (!this.busy) for (const s of this.endpoints) s.lastSuccess = Math.max(s.lastSuccess, this.now());
  }

  private checkStalls(): void {
    if (!this.busy || this.abort.signal.aborted) {
      this.watchdog?.unref();
      return;
    }
    const after = Math.max(this.opts.stallTimeoutMs, (this.opts.attemptTimeoutMs ?? 0) + 1_000);
    for (const s of this.endpoints) {
      if (s.dead) continue;
      this.checkStall(s, after);
      if (s.dead && s.inflight > 0)
        s.lastError = `${s.inflight} request(s) unanswered${s.lastError ? `; before that: ${s.lastError}` : ""}`;
    }
    if (this.allDead) {
      this.stalled = true;
      this.abort.abort();
    }
  }

  /** A slot on some endpoint, or undefined when every endpoint is given up or the run is aborted. */
  async acquire(): Promise<EndpointState | undefined> {
    this.resumeClock();
    this.watch();
    for (;;) {
      if (this.abort.signal.aborted || this.allDead) return undefined;
      const s = this.pick();
      if (s) return s;
      this.armTimer();
      await new Promise<void>((r) => {
        this.waiters.add(r);
      });
    }
  }

  /** Return a slot unused. */
  giveBack(s: EndpointState): void {
    s.inflight--;
    if (s.state === "half-open") s.probing = false;
    this.wakeOne();
  }

  private onSuccess(s: EndpointState): void {
    s.inflight--;
    s.successes++;
    s.failuresInRow = 0;
    s.lastSuccess = this.now();
    s.probing = false;
    if (s.state !== "closed") {
      s.state = "closed";
      s.cooldownMs = Math.max(this.opts.backoffBaseMs, 250);
      this.wakeAll();
      return;
    }
    s.limit = Math.min(s.ep.concurrency, s.limit + 1 / Math.max(1, s.limit));
    this.wakeOne();
  }

  private onBackpressure(s: EndpointState, retryAfterMs: number | undefined): void {
    s.inflight--;
    s.backpressure++;
    this.stats.backpressure++;
    const t = this.now();
    // Halve at most once per cool-down window: a burst of 429s from one overload is one signal.
    if (t - s.lastDecrease > Math.max(retryAfterMs ?? 0, this.opts.backoffBaseMs)) {
      s.limit = Math.max(1, s.limit / 2);
      s.lastDecrease = t;
    }
    const pause = Math.min(retryAfterMs ?? this.opts.backoffBaseMs, 5 * 60_000);
    s.pausedUntil = Math.max(s.pausedUntil, t + pause);
    if (s.state === "half-open") {
      // The server answered: it is up, just busy. Close so the pause alone decides.
      s.state = "closed";
      s.probing = false;
    }
    this.checkStall(s);
    this.armTimer();
    this.wakeOne();
  }

  private onFailure(s: EndpointState, err: GenerationError): void {
    s.inflight--;
    s.failures++;
    s.failuresInRow++;
    s.lastError = err.message;
    const t = this.now();
    if (s.state === "half-open") {
      s.probing = false;
      s.cooldownMs = Math.min(MAX_COOLDOWN_MS, s.cooldownMs * 2);
      s.state = "open";
      s.openUntil = t + Math.max(s.cooldownMs, err.extra.retryAfterMs ?? 0);
    } else if (s.state === "closed" && s.failuresInRow >= this.opts.breakAfter) {
      s.state = "open";
      s.openUntil = t + Math.max(s.cooldownMs, err.extra.retryAfterMs ?? 0);
    }
    this.checkStall(s);
    this.armTimer();
    if (s.dead || s.state === "open") this.wakeAll();
    else this.wakeOne();
  }

  private checkStall(s: EndpointState, afterMs = this.opts.stallTimeoutMs): void {
    if (!s.dead && this.now() - s.lastSuccess >= afterMs) {
      s.dead = true;
      this.wakeAll();
    }
  }

  private backoff(n: number, retryAfterMs?: number): number {
    const b =
      Math.min(this.opts.backoffMaxMs, this.opts.backoffBaseMs * 2 ** n) * (0.5 + this.random() * 0.5);
    return Math.min(Math.max(b, retryAfterMs ?? 0), 5 * 60_000);
  }

  /**
   * Send one request under the policy. `send` is called with an endpoint (again on each retry, possibly
   * another endpoint). Resolves with the answer or the request's final error; throws StalledError when
   * every endpoint has been given up.
   */
  async run(
    send: (ep: Endpoint, signal: AbortSignal) => Promise<GenResponse>,
    first?: EndpointState,
  ): Promise<Outcome> {
    this.resumeClock();
    this.running++;
    try {
      return await this.attempts(send, first);
    } finally {
      this.running--;
    }
  }

  private async attempts(
    send: (ep: Endpoint, signal: AbortSignal) => Promise<GenResponse>,
    first?: EndpointState,
  ): Promise<Outcome> {
    let slot = first;
    const c: Attempts = { attempts: 0, failed: 0, pressured: 0 };
    for (;;) {
      slot ??= await this.acquire();
      if (!slot) return this.noSlot(c);
      const s = slot;
      slot = undefined;
      const probe = s.state === "half-open";
      c.attempts++;
      const t0 = performance.now();
      try {
        const res = await untilAborted(send(s.ep, this.abort.signal), this.abort.signal);
        this.onSuccess(s);
        return {
          ok: true,
          res,
          attempts: c.attempts,
          endpoint: s.ep.label,
          latencyMs: performance.now() - t0,
        };
      } catch (e) {
        const outcome = await this.afterError(s, asGenerationError(e), probe, c);
        if (outcome) return outcome;
      }
    }
  }

  /** No endpoint slot: the run was aborted, or every endpoint is given up (StalledError). */
  private noSlot(c: Attempts): Outcome {
    if (this.abort.signal.aborted && !this.stalled)
      return { ok: false, error: abortedError(), attempts: c.attempts, aborted: true };
    throw new StalledError(`every endpoint has stopped answering: ${this.describeDead()}`);
  }

  /** After a failed attempt: the request's final outcome, or undefined to try again (after any backoff). */
  private async afterError(
    s: EndpointState,
    err: GenerationError,
    probe: boolean,
    c: Attempts,
  ): Promise<Outcome | undefined> {
    if (this.abort.signal.aborted) {
      s.inflight--;
      if (this.stalled) return this.noSlot(c);
      return { ok: false, error: err, attempts: c.attempts, aborted: true };
    }
    const status = err.extra.status;
    if (status === 429 || (status === 503 && err.extra.retryAfterMs !== undefined))
      return this.afterBackpressure(s, err, c);
    if (!err.retryable) {
      s.inflight--;
      if (s.state === "half-open") s.probing = false;
      this.wakeOne();
      return { ok: false, error: err, attempts: c.attempts };
    }
    this.onFailure(s, err);
    // A probe's failure belongs to the endpoint, not to the request: it waits for the next probe.
    if (!probe) c.failed++;
    if (c.failed > this.opts.retries) return { ok: false, error: err, attempts: c.attempts };
    this.stats.retries++;
    if (!probe) await sleep(this.backoff(c.failed - 1, err.extra.retryAfterMs), this.abort.signal);
    return undefined;
  }

  /** 429, or 503 with Retry-After: back-pressure, which spends none of the request's retries. */
  private async afterBackpressure(
    s: EndpointState,
    err: GenerationError,
    c: Attempts,
  ): Promise<Outcome | undefined> {
    this.onBackpressure(s, err.extra.retryAfterMs);
    if (++c.pressured > (this.opts.maxBackpressure ?? 500))
      return { ok: false, error: err, attempts: c.attempts };
    // Without Retry-After the pause is short; spread the retries so they do not arrive together.
    if (err.extra.retryAfterMs === undefined)
      await sleep(this.backoff(Math.min(c.pressured, 6)), this.abort.signal);
    return undefined;
  }

  async close(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    clearInterval(this.watchdog);
    this.wakeAll();
    await Promise.all(this.endpoints.map((s) => s.ep.close?.()));
  }
}

/** Attempts of one request: all of them, failed ones (counted against retries), back-pressured ones. */
interface Attempts {
  attempts: number;
  failed: number;
  pressured: number;
}

function asGenerationError(e: unknown): GenerationError {
  return e instanceof GenerationError
    ? e
    : new GenerationError((e as Error).message, false, {}, { cause: e });
}

function abortedError(): GenerationError {
  return new GenerationError("aborted", false);
}

/**
 * `p`, or an "aborted" rejection as soon as `signal` fires: an endpoint that ignores the signal cannot
 * hold the caller. An abandoned `p` settling later is ignored (never an unhandled rejection).
 */
function untilAborted<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    p.catch(() => {});
    return Promise.reject(abortedError());
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      p.catch(() => {});
      reject(abortedError());
    };
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener("abort", onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener("abort", onAbort);
        reject(e);
      },
    );
  });
}

export const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
