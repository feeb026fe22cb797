/**
 * A long-lived training worker process: `node src/train/worker.ts --synthmix-train-worker` (forked by
 * src/sweep/pool.ts with an IPC channel). It trains one run at a time, in this process, for as many runs
 * as the sweep hands it, so the fixed cost of a run (node start-up, loading and compiling the TypeScript
 * sources, loading the native addon, loading the test sets) is paid once per worker instead of once per
 * run. Those fixed costs were a large share of the demo's small runs (bench/sweep.ts).
 *
 * Protocol (process.send / "message"):
 *   parent -> worker  {type: "run", id, runDir, config}   train (or resume) this run
 *                     {type: "abort", id}                  stop it after a checkpoint (trainRun's signal)
 *   worker -> parent  {type: "ready", pid}                 once, after start-up
 *                     {type: "done", id, final}            the final record
 *                     {type: "error", id, error}           {code, message, hint} of the failure
 * Progress lines go to stderr, which the pool appends to the run's train.log.
 *
 * The worker never outlives its sweep: when the IPC channel closes (the sweep exited or was SIGKILLed)
 * or on SIGTERM/SIGINT it stops the current run after a checkpoint and exits, so a resumed sweep never
 * trains a run twice into the same folder (the sweep also stops a worker left running, see
 * WORKER_MARKER).
 */
import { SynthmixError } from "../util/errors.js";
import { onInterrupt } from "../util/interrupt.js";
import type { RunConfig } from "./schema.js";
import { type FinalRecord, trainRun } from "./trainer.js";

/** Command-line marker of a worker process (the sweep's orphan check looks for it in /proc/<pid>/cmdline). */
export const WORKER_MARKER = "--synthmix-train-worker";

export type WorkerRequest =
  | { type: "run"; id: string; runDir: string; config: RunConfig }
  | { type: "abort"; id: string };

export type WorkerReply =
  | { type: "ready"; pid: number }
  | { type: "done"; id: string; final: FinalRecord }
  | { type: "error"; id: string; error: { code: string; message: string; hint?: string } };

function serializeError(e: unknown): { code: string; message: string; hint?: string } {
  if (e instanceof SynthmixError) return { code: e.code, message: e.message, hint: e.hint };
  const err = e as Error;
  return { code: "RUN_FAILED", message: err?.stack ?? String(e) };
}

function main(): void {
  if (typeof process.send !== "function") {
    process.stderr.write(
      "synthmix: the training worker must be started by the sweep (it needs an IPC channel)\n",
    );
    process.exit(2);
  }
  const send = (m: WorkerReply) => process.send?.(m);
  let current: { id: string; ctrl: AbortController } | null = null;
  let exiting = false;
  const stop = () => {
    exiting = true;
    if (current) current.ctrl.abort();
    else process.exit(0);
  };
  process.on("disconnect", stop);
  // The first SIGTERM/SIGINT stops the current run after a checkpoint; a second exits at once.
  onInterrupt(stop);

  process.on("message", (msg: WorkerRequest) => {
    if (msg.type === "abort") {
      if (current?.id === msg.id) current.ctrl.abort();
      return;
    }
    if (msg.type !== "run") return;
    if (current) {
      send({
        type: "error",
        id: msg.id,
        error: { code: "WORKER_BUSY", message: `worker busy with ${current.id}` },
      });
      return;
    }
    const ctrl = new AbortController();
    current = { id: msg.id, ctrl };
    if (exiting) ctrl.abort();
    trainRun(msg.runDir, msg.config, { progress: true, signal: ctrl.signal })
      .then(
        (final) => send({ type: "done", id: msg.id, final }),
        (e) => send({ type: "error", id: msg.id, error: serializeError(e) }),
      )
      .finally(() => {
        current = null;
        if (exiting) process.exit(0);
      });
  });
  send({ type: "ready", pid: process.pid });
}

if (process.argv.includes(WORKER_MARKER)) main();
