/**
 * Loader for the C++ kernel addon (native/*.cc, built by node-gyp into build/Release/synthmix_kernels.node
 * during `npm ci`). The addon exports the `Kernels` functions with the same argument order; it checks
 * that every array is a Float32Array (Int32Array for tokens/targets) large enough for the given shapes,
 * so a shape mistake throws a TypeError/RangeError instead of corrupting memory.
 */
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Kernels } from "./types.js";

/** The raw addon: the kernel functions plus controls used by tests and benchmarks. */
export interface NativeAddon extends Omit<Kernels, "name" | "setThreads" | "clipGradNorm"> {
  clipGradNorm(grads: Float32Array, N: number, maxNorm: number): number;
  setThreads(n: number): void;
  getThreads(): number;
  /** The GEMM micro-kernel in use: "avx512", "avx2" (AVX2 + FMA) or "portable". */
  isa(): string;
  /** Switches the GEMM micro-kernel; returns false if this CPU cannot run it. */
  setIsa(name: "avx512" | "avx2" | "portable"): boolean;
  /** Work (flops) below which kernels stay on one thread; tests set 0 to exercise the partitioning. */
  setMinParallelWork(work: number): void;
}

/** Finds build/Release/synthmix_kernels.node by walking up from this file to the package root. */
function findAddon(): string | null {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const candidate = join(dir, "build", "Release", "synthmix_kernels.node");
    if (existsSync(candidate)) return candidate;
    if (existsSync(join(dir, "binding.gyp"))) return null;
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  return null;
}

let cached:
  | { kernels: (Kernels & { isa: string }) | null; addon: NativeAddon | null; error: string | null }
  | undefined;

/** The raw addon (for tests and benchmarks), or null when it is not built. */
export function nativeAddon(): NativeAddon | null {
  loadNativeKernels();
  return cached?.addon ?? null;
}

/** The native kernels, or null (with the reason in `nativeLoadError()`) when the addon is not built. */
export function loadNativeKernels(): (Kernels & { isa: string }) | null {
  if (cached !== undefined) return cached.kernels;
  const path = findAddon();
  if (path === null) {
    cached = {
      kernels: null,
      addon: null,
      error: "build/Release/synthmix_kernels.node not found (run `npm ci` or `npx node-gyp rebuild`)",
    };
    return null;
  }
  try {
    const addon = createRequire(import.meta.url)(path) as NativeAddon;
    const kernels: Kernels & { isa: string } = {
      name: "native",
      isa: addon.isa(),
      encoderForward: addon.encoderForward,
      encoderBackward: addon.encoderBackward,
      layernormForward: addon.layernormForward,
      layernormBackward: addon.layernormBackward,
      matmulForward: addon.matmulForward,
      matmulBackward: addon.matmulBackward,
      attentionForward: addon.attentionForward,
      attentionBackward: addon.attentionBackward,
      geluForward: addon.geluForward,
      geluBackward: addon.geluBackward,
      residualForward: addon.residualForward,
      crossEntropyForward: addon.crossEntropyForward,
      logitsCrossEntropy: addon.logitsCrossEntropy,
      adamwUpdate: addon.adamwUpdate,
      clipGradNorm: addon.clipGradNorm,
      setThreads: addon.setThreads,
    };
    cached = { kernels, addon, error: null };
  } catch (err) {
    cached = { kernels: null, addon: null, error: `failed to load ${path}: ${(err as Error).message}` };
  }
  return cached.kernels;
}

export function nativeLoadError(): string | null {
  loadNativeKernels();
  return cached?.error ?? null;
}
