import type { Endpoint } from "./backends/types.js";

interface Slot {
  ep: Endpoint;
  inflight: number;
  consecutiveFailures: number;
  open: boolean;
  lastError?: string;
}

/**
 * Endpoints that serve one generator, each with its own concurrency limit. `acquire` hands out the
 * endpoint with the lowest load (in-flight / limit) that has a free slot, and waits when all are busy.
 * A circuit breaker takes an endpoint out after `breakAfter` consecutive failed attempts.
 */
export class EndpointPool {
  private readonly slots: Slot[];
  private readonly waiters: (() => void)[] = [];

  constructor(
    endpoints: Endpoint[],
    private readonly breakAfter = 10,
  ) {
    this.slots = endpoints.map((ep) => ({ ep, inflight: 0, consecutiveFailures: 0, open: false }));
  }

  get capacity(): number {
    return this.slots.reduce((a, s) => a + (s.open ? 0 : s.ep.concurrency), 0);
  }

  /** True when every endpoint's breaker is open: the generator cannot make progress. */
  get allOpen(): boolean {
    return this.slots.every((s) => s.open);
  }

  describeOpen(): string {
    return this.slots
      .filter((s) => s.open)
      .map((s) => `${s.ep.label} (${s.consecutiveFailures} failures in a row; last: ${s.lastError ?? "?"})`)
      .join("; ");
  }

  async acquire(): Promise<Slot | undefined> {
    for (;;) {
      if (this.allOpen) return undefined;
      let best: Slot | undefined;
      let bestLoad = Number.POSITIVE_INFINITY;
      for (const s of this.slots) {
        if (s.open || s.inflight >= s.ep.concurrency) continue;
        const load = s.inflight / s.ep.concurrency;
        if (load < bestLoad) {
          best = s;
          bestLoad = load;
        }
      }
      if (best) {
        best.inflight++;
        return best;
      }
      await new Promise<void>((r) => this.waiters.push(r));
    }
  }

  /** Return a slot unused (no success or failure to record). */
  giveBack(slot: Slot): void {
    slot.inflight--;
    this.waiters.shift()?.();
  }

  release(slot: Slot, ok: boolean, error?: string): void {
    slot.inflight--;
    if (ok) slot.consecutiveFailures = 0;
    else {
      slot.consecutiveFailures++;
      slot.lastError = error;
      if (slot.consecutiveFailures >= this.breakAfter && !slot.open) {
        slot.open = true;
        // Wake everyone: waiters must see that the breaker opened (and give up if all are open).
        for (const f of this.waiters.splice(0)) f();
        return;
      }
    }
    // One slot freed: wake one waiter (waking all would be O(concurrency) work per request).
    this.waiters.shift()?.();
  }

  async close(): Promise<void> {
    await Promise.all(this.slots.map((s) => s.ep.close?.()));
  }
}

export type PoolSlot = Slot;
