import { Worker, type WorkerOptions } from "node:worker_threads";

/**
 * Start a worker thread from a module next to the caller. When synthmix runs from TypeScript sources
 * (tests, `tsx`), the worker needs tsx's loader too; from the compiled `dist/` it needs nothing.
 */
export function startWorker(moduleUrl: URL, options: WorkerOptions = {}): Worker {
  const isTs = moduleUrl.pathname.endsWith(".ts");
  const execArgv = isTs ? [...(options.execArgv ?? []), "--import", "tsx"] : options.execArgv;
  return new Worker(moduleUrl, { ...options, execArgv });
}

/** The sibling module URL with the extension matching the caller's (".ts" from source, ".js" built). */
export function siblingModule(callerUrl: string, baseName: string): URL {
  const ext = callerUrl.endsWith(".ts") ? ".ts" : ".js";
  return new URL(`./${baseName}${ext}`, callerUrl);
}
