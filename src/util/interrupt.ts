/**
 * The one interrupt helper: the first SIGINT/SIGTERM asks the work to stop at its next safe point
 * (checkpoint, finished write) so that a rerun resumes; a second one exits at once. Used by the CLI's
 * long-running commands (`withInterrupt`, re-exported by src/cli/options.ts) and by the training
 * worker process (`onInterrupt`).
 */

/** Exit code of a command stopped by a signal (128 + SIGINT), as shells report it. */
export const INTERRUPTED_EXIT_CODE = 130;

export interface InterruptOptions {
  /** Printed to stderr on the first signal: what happens now and how to resume. */
  message?: string;
  /** Signals that stop the work (default SIGINT and SIGTERM: Ctrl-C, and a sweep or Slurm stopping us). */
  signals?: NodeJS.Signals[];
}

/**
 * Calls `stop` on the first of `opts.signals` (printing `opts.message`) and exits the process with
 * code 130 on a second. Returns a function that removes the handlers.
 */
export function onInterrupt(stop: () => void, opts: InterruptOptions = {}): () => void {
  const signals = opts.signals ?? ["SIGINT", "SIGTERM"];
  let stopped = false;
  const onSignal = () => {
    if (stopped) process.exit(INTERRUPTED_EXIT_CODE);
    stopped = true;
    if (opts.message) process.stderr.write(`\n${opts.message}\n`);
    stop();
  };
  for (const s of signals) process.on(s, onSignal);
  return () => {
    for (const s of signals) process.off(s, onSignal);
  };
}

/**
 * Run `fn` with an AbortSignal that the first SIGINT/SIGTERM aborts (see onInterrupt). When the work
 * was interrupted the process exit code is 130, also if `fn` returns normally: work was left undone.
 */
export async function withInterrupt<T>(
  fn: (signal: AbortSignal) => Promise<T>,
  opts: InterruptOptions = {},
): Promise<T> {
  const ac = new AbortController();
  const off = onInterrupt(() => ac.abort(), opts);
  try {
    return await fn(ac.signal);
  } finally {
    off();
    if (ac.signal.aborted) process.exitCode = INTERRUPTED_EXIT_CODE;
  }
}
