import type { SpawnSyncReturns } from "node:child_process";
import { readFileSync } from "node:fs";

/**
 * OPENBLAS_CORETYPE for the Python peers. Debian's OpenBLAS 0.3.21 does not recognise recent AVX-512
 * CPUs (Zen 4/5, Sapphire Rapids) and falls back to its Haswell kernels there, so the benches used to
 * force SkylakeX; on a CPU without AVX-512 that build dies of SIGILL (which printed "torch peer failed:
 * undefined" and a table of n/a). So: the caller's OPENBLAS_CORETYPE if set, SkylakeX where
 * /proc/cpuinfo lists avx512f, else none (OpenBLAS's own detection, right for the AVX2 CPUs it knows).
 */
export function openblasCoretype(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.OPENBLAS_CORETYPE) return env.OPENBLAS_CORETYPE;
  let cpuinfo = "";
  try {
    cpuinfo = readFileSync("/proc/cpuinfo", "utf8");
  } catch {
    return undefined;
  }
  return /^flags\s*:.*\bavx512f\b/m.test(cpuinfo) ? "SkylakeX" : undefined;
}

/** The environment for an OpenBLAS peer on `threads` BLAS threads (see openblasCoretype). */
export function openblasEnv(threads: number, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, OPENBLAS_NUM_THREADS: String(threads), ...extra };
  const coretype = openblasCoretype();
  if (coretype === undefined) delete env.OPENBLAS_CORETYPE;
  else env.OPENBLAS_CORETYPE = coretype;
  return env;
}

/** Why a peer process failed, in words: exit code or signal, spawn error, and its stderr. */
export function peerFailure(r: SpawnSyncReturns<string>): string {
  const how = r.error
    ? `could not run (${r.error.message})`
    : r.signal
      ? `killed by ${r.signal}${r.signal === "SIGILL" ? " (an instruction this CPU lacks: check OPENBLAS_CORETYPE)" : ""}`
      : `exit code ${r.status}`;
  const err = (r.stderr ?? "").trim();
  return err ? `${how}: ${err}` : how;
}
