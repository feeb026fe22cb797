import { Worker, type WorkerOptions } from "node:worker_threads";

/**
 * Start a worker thread from a module next to the caller. When synthmix runs from TypeScript sources
 * (tests, `tsx`), the worker needs tsx's loader too; from the compiled `dist/` it needs nothing.
 */
export function startWorker(moduleUrl: URL, options: WorkerOptions = {}): Worker {
  if (!moduleUrl.pathname.endsWith(".ts")) return new Worker(moduleUrl, options);
  // Node 20 does not apply `--import tsx` loader hooks inside worker threads ("Unknown file extension
  // .ts"), so a small eval'd bootstrap registers tsx's loader in the worker and then imports the module.
  const api = import.meta.resolve("tsx/esm/api");
  const code = `import(${JSON.stringify(api)}).then((m) => { m.register(); return import(${JSON.stringify(moduleUrl.href)}); });`;
  return new Worker(code, { ...options, eval: true });
}

/** The sibling module URL with the extension matching the caller's (".ts" from source, ".js" built). */
export function siblingModule(callerUrl: string, baseName: string): URL {
  const ext = callerUrl.endsWith(".ts") ? ".ts" : ".js";
  return new URL(`./${baseName}${ext}`, callerUrl);
}
