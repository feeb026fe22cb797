/**
 * The default local executor: a pool of long-lived training worker processes (src/train/worker.ts),
 * reused across runs. A fresh `synthmix train` process per run pays node start-up, TypeScript loading,
 * addon loading and test-set loading every time; for the demo's small runs (a few seconds each) that was
 * a large share of the sweep's wall time. Results are identical either way: trainRun depends only on the
 * run's config (tested: a pooled run and a fresh-process run give the same metrics byte for byte).
 *
 * Each worker trains one run at a time; the scheduler decides how many run side by side, so the pool
 * only grows to the scheduler's concurrency. A worker that dies (crash, OOM kill) fails only its run
 * (the error carries the tail of train.log, like the child-process executor) and is replaced.
 */
import { type ChildProcess, fork } from "node:child_process";
import { closeSync, existsSync, openSync, readdirSync, readFileSync, statSync, writeSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { WorkerReply, WorkerRequest } from "../train/worker.js";
import { SynthmixError } from "../util/errors.js";
import type { RunExecutor, RunJob } from "./executors.js";
import type { FinalMetric } from "./registry.js";

/** Same string as WORKER_MARKER in src/train/worker.ts (not imported: that would load the trainer here). */
export const POOL_WORKER_MARKER = "--synthmix-train-worker";

interface Worker {
  child: ChildProcess;
  ready: Promise<void>;
  /** The job's log file descriptor while it runs; worker output goes there. */
  logFd: number | null;
  /** Settles the running job when the worker exits early. */
  onExit: ((code: number | null, signal: NodeJS.Signals | null) => void) | null;
  onReply: ((m: WorkerReply) => void) | null;
  dead: boolean;
}

export interface PooledExecutor extends RunExecutor {
  /** Stops the idle workers (running jobs are not affected); the executor stays usable. */
  close(): void;
}

/**
 * True when every `src/**\/*.ts` has a `dist/**\/*.js` compiled after it (`npm run build` since the last
 * edit): the compiled worker is then the same code as the sources.
 */
export function distIsFresh(root: string): boolean {
  const walk = (rel: string): boolean => {
    for (const e of readdirSync(join(root, "src", rel), { withFileTypes: true })) {
      const r = join(rel, e.name);
      if (e.isDirectory()) {
        if (!walk(r)) return false;
      } else if (e.name.endsWith(".ts") && !e.name.endsWith(".d.ts")) {
        const js = join(root, "dist", r.replace(/\.ts$/, ".js"));
        if (!existsSync(js) || statSync(js).mtimeMs < statSync(join(root, "src", r)).mtimeMs) return false;
      }
    }
    return true;
  };
  return existsSync(join(root, "dist")) && walk("");
}

function workerEntry(): { module: string; execArgv: string[] } {
  const here = fileURLToPath(import.meta.url);
  const root = resolve(dirname(here), "..", "..");
  // Run from the TypeScript sources (tsx: tests, benches) with an up-to-date build: start the compiled
  // worker, as the installed CLI does. The tsx loader costs ~0.8 s of CPU per worker start (node
  // --import tsx of the trainer 1.0 s against 0.36 s from dist/), ~2% of bench/sweep.ts.
  if (here.endsWith(".ts") && process.env.SYNTHMIX_WORKER_FROM_SOURCE !== "1" && distIsFresh(root))
    return { module: join(root, "dist", "train", "worker.js"), execArgv: [] };
  if (here.endsWith(".ts")) {
    // An absolute loader URL: `--import tsx` would be resolved from the cwd, which may be anywhere.
    return {
      module: join(root, "src", "train", "worker.ts"),
      execArgv: ["--import", import.meta.resolve("tsx")],
    };
  }
  return { module: join(dirname(here), "..", "train", "worker.js"), execArgv: [] };
}

function spawnWorker(): Worker {
  const { module, execArgv } = workerEntry();
  const child = fork(module, [POOL_WORKER_MARKER], {
    execArgv,
    stdio: ["ignore", "pipe", "pipe", "ipc"],
    env: { ...process.env, SYNTHMIX_PROGRESS: "plain" },
  });
  const w: Worker = {
    child,
    ready: Promise.resolve(),
    logFd: null,
    onExit: null,
    onReply: null,
    dead: false,
  };
  const toLog = (chunk: Buffer) => {
    if (w.logFd !== null) writeSync(w.logFd, chunk);
  };
  child.stdout?.on("data", toLog);
  child.stderr?.on("data", toLog);
  w.ready = new Promise<void>((res, rej) => {
    const onMsg = (m: WorkerReply) => {
      if (m.type === "ready") {
        child.off("message", onMsg);
        res();
      }
    };
    child.on("message", onMsg);
    child.once("exit", (code, sig) => rej(new Error(`worker exited during start-up (${sig ?? code})`)));
  });
  w.ready.catch(() => {});
  child.on("message", (m: WorkerReply) => w.onReply?.(m));
  child.on("exit", (code, sig) => {
    w.dead = true;
    w.onExit?.(code, sig);
  });
  setActive(w, false);
  return w;
}

/**
 * An idle worker must not keep the sweep's process alive (it exits by itself when the channel closes);
 * a busy one must, since the sweep is only awaiting a promise.
 */
function setActive(w: Worker, active: boolean): void {
  const handles = [w.child, w.child.channel, w.child.stdout, w.child.stderr] as (
    | {
        ref?: () => void;
        unref?: () => void;
      }
    | null
    | undefined
  )[];
  for (const h of handles) (active ? h?.ref : h?.unref)?.call(h);
}

function logTail(logPath: string, from: number): string {
  return readFileSync(logPath)
    .subarray(from)
    .toString("utf8")
    .split("\n")
    .filter((l) => l.trim() !== "")
    .slice(-6)
    .join("\n  ");
}

/** Runs a job on worker `w`; resolves with the final record or rejects with the run's error. */
async function runOn(w: Worker, job: RunJob): Promise<FinalMetric> {
  const logPath = join(job.runDir, "train.log");
  const fd = openSync(logPath, "a");
  writeSync(fd, `\n=== ${new Date().toISOString()} worker ${w.child.pid} train ${job.configPath}\n`);
  const logStart = readFileSync(logPath).byteLength;
  w.logFd = fd;
  setActive(w, true);
  const onAbort = () => send(w, { type: "abort", id: job.id });
  try {
    await w.ready;
    job.onStart?.(w.child.pid);
    job.signal.addEventListener("abort", onAbort, { once: true });
    if (job.signal.aborted) onAbort();
    return await new Promise<FinalMetric>((res, rej) => {
      w.onReply = (m) => {
        if (m.type === "done" && m.id === job.id) res(m.final);
        else if (m.type === "error" && m.id === job.id)
          rej(
            new SynthmixError(m.error.code, m.error.message, {
              hint: m.error.hint ?? `full output in ${logPath}`,
            }),
          );
      };
      w.onExit = (code, sig) => {
        const tail = logTail(logPath, logStart);
        rej(
          new SynthmixError(
            "RUN_FAILED",
            `training worker ${sig ? `was killed by ${sig}` : `exited with code ${code}`}${tail ? `:\n  ${tail}` : ""}`,
            { hint: `full output in ${logPath}` },
          ),
        );
      };
      send(w, { type: "run", id: job.id, runDir: job.runDir, config: job.config });
    });
  } finally {
    job.signal.removeEventListener("abort", onAbort);
    w.onReply = null;
    w.onExit = null;
    w.logFd = null;
    setActive(w, false);
    closeSync(fd);
  }
}

function send(w: Worker, m: WorkerRequest): void {
  if (!w.dead && w.child.connected) w.child.send(m);
}

/**
 * An executor training each run in a reused worker process. Same contract as childProcessExecutor:
 * output appended to `<run>/train.log`, the pid recorded through `onStart`, abort = stop after a
 * checkpoint (the worker then stays usable).
 */
export function pooledExecutor(): PooledExecutor {
  const idle: Worker[] = [];
  const exec = (async (job: RunJob) => {
    let w = idle.pop();
    while (w?.dead) w = idle.pop();
    w ??= spawnWorker();
    try {
      const final = await runOn(w, job);
      if (!w.dead) idle.push(w);
      return final;
    } catch (e) {
      // A worker whose run failed may hold a half-updated state (e.g. an exception inside a kernel):
      // retire it; an aborted run is a clean stop, so that worker is kept.
      if (!w.dead && job.signal.aborted) idle.push(w);
      else if (!w.dead) w.child.kill("SIGTERM");
      throw e;
    }
  }) as PooledExecutor;
  exec.close = () => {
    for (const w of idle.splice(0)) if (!w.dead) w.child.kill("SIGTERM");
  };
  return exec;
}
