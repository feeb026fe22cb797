import type { SpawnSyncReturns } from "node:child_process";
import { readFileSync } from "node:fs";

/**
 * OPENBLAS_CORETYPE for the Python peers: the peer must be the strongest one runnable here. Debian's
 * OpenBLAS 0.3.21 does not recognise recent AVX-512 CPUs (Zen 4/5, Sapphire Rapids) and falls back to its
 * Haswell kernels there, so on a CPU whose /proc/cpuinfo lists avx512f the peers run SkylakeX; on a CPU
 * without AVX-512 that build dies of SIGILL, so there OpenBLAS's own detection chooses (right for the
 * AVX2 CPUs it knows).
 *
 * An inherited OPENBLAS_CORETYPE is NOT followed: this machine's environment sets Haswell, which ran
 * the torch peer's 2048x256x1024 SGEMM at 94 GFLOP/s against 224 with SkylakeX (Zen 5, 2026-12-04), so
 * every "x PyTorch" printed under it flattered us by up to 2.4x. SYNTHMIX_PEER_OPENBLAS_CORETYPE
 * chooses explicitly (e.g. to compare kernel sets); `openblasNote` says when the inherited value was
 * overridden, and the benches print it.
 */
export function openblasCoretype(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.SYNTHMIX_PEER_OPENBLAS_CORETYPE) return env.SYNTHMIX_PEER_OPENBLAS_CORETYPE;
  let cpuinfo = "";
  try {
    cpuinfo = readFileSync("/proc/cpuinfo", "utf8");
  } catch {
    return undefined;
  }
  return /^flags\s*:.*\bavx512f\b/m.test(cpuinfo) ? "SkylakeX" : undefined;
}

/** The peers' OPENBLAS_CORETYPE in words, and a warning when it overrides an inherited one. */
export function openblasNote(env: NodeJS.ProcessEnv = process.env): string {
  const chosen = openblasCoretype(env);
  const said = `OPENBLAS_CORETYPE=${chosen ?? "(OpenBLAS detects)"}`;
  const inherited = env.OPENBLAS_CORETYPE;
  return inherited !== undefined && inherited !== chosen
    ? `${said} (the inherited OPENBLAS_CORETYPE=${inherited} is overridden: the peer runs its strongest kernels; set SYNTHMIX_PEER_OPENBLAS_CORETYPE to choose)`
    : said;
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
