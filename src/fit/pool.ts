import type { Worker } from "node:worker_threads";
import { siblingModule, startWorker } from "../util/workers.js";
import {
  assembleOutcome,
  bootstrapCount,
  bootstrapRange,
  collectBoot,
  type FitOptions,
  type FitOutcome,
  makeData,
  type Optimum,
  type Point,
  polish,
  refitStarts,
  resolveForm,
  screen,
} from "./fit.js";
import { type FitData, type Form, getForm } from "./forms.js";
import { FIT_DEFAULTS } from "./options.js";
import type { FitTask } from "./worker.js";

/**
 * Worker threads for the two embarrassingly parallel parts of a fit: screening the start grid and the
 * bootstrap refits. Results are identical to the single-threaded path (same starts, per-replicate seeds).
 */
export class FitPool {
  private readonly workers: Worker[] = [];
  private next = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();

  constructor(readonly size: number) {
    for (let i = 0; i < size; i++) {
      const w = startWorker(siblingModule(import.meta.url, "worker"));
      w.on("message", (m: { id: number; result?: unknown; error?: string }) => {
        const p = this.pending.get(m.id);
        if (!p) return;
        this.pending.delete(m.id);
        if (m.error) p.reject(new Error(m.error));
        else p.resolve(m.result);
      });
      w.on("error", (e) => {
        for (const p of this.pending.values()) p.reject(e);
        this.pending.clear();
      });
      this.workers.push(w);
    }
  }

  private run<T>(worker: number, task: FitTask): Promise<T> {
    const id = this.next++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.workers[worker].postMessage({ id, task });
    });
  }

  /** Screen the grid with start i on worker i mod size (neighbouring starts cost alike), in grid order. */
  async screen(form: Form, data: FitData, delta: number, grid: number[][]): Promise<Optimum[]> {
    const n = this.size;
    const parts = await Promise.all(
      this.workers.map((_, w) =>
        this.run<Optimum[]>(w, {
          kind: "screen",
          form: form.name,
          data,
          delta,
          starts: grid.filter((_, i) => i % n === w),
        }),
      ),
    );
    return grid.map((_, i) => parts[i % n][Math.floor(i / n)]);
  }

  async bootstrap(form: Form, data: FitData, delta: number, starts: number[][], count: number, seed: number) {
    const per = Math.ceil(count / this.size);
    const parts = await Promise.all(
      this.workers.map((_, w) =>
        this.run<(number[] | null)[]>(w, {
          kind: "boot",
          form: form.name,
          data,
          delta,
          starts,
          seed,
          from: Math.min(count, w * per),
          to: Math.min(count, (w + 1) * per),
        }),
      ),
    );
    return parts.flat();
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
    this.workers.length = 0;
  }
}

/**
 * `fitScalingLaw` with the grid screening and bootstrap spread over a worker pool. Forms that are not
 * registered built-ins (functions cannot cross threads) fall back to the main thread.
 */
export async function fitScalingLawParallel(
  points: Point[],
  formIn: Form | string,
  pool: FitPool | null,
  opts: FitOptions = {},
): Promise<FitOutcome> {
  const form = resolveForm(formIn);
  const delta = opts.huberDelta ?? FIT_DEFAULTS.huberDelta;
  const data = makeData(points, form, opts.label);
  const grid = opts.grid ?? form.initGrid();
  const usePool = pool !== null && pool.size > 1 && getForm(form.name) === form;
  const screened = usePool ? await pool.screen(form, data, delta, grid) : screen(form, data, delta, grid);
  const { best, optima } = polish(form, data, delta, screened, opts.tight);
  const starts = refitStarts(optima);
  const count = bootstrapCount(form, data, opts.bootstrap ?? FIT_DEFAULTS.bootstrap);
  const seed = opts.seed ?? FIT_DEFAULTS.seed;
  const all =
    count === 0
      ? []
      : usePool
        ? await pool.bootstrap(form, data, delta, starts, count, seed)
        : bootstrapRange(form, data, delta, starts, seed, 0, count);
  return assembleOutcome(
    form,
    data,
    delta,
    grid.length,
    best,
    starts,
    { ...collectBoot(all), requested: count },
    opts,
  );
}
