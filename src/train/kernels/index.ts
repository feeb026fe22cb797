import { loadNativeKernels, nativeLoadError } from "./native.js";
import { referenceKernels } from "./reference.js";
import type { Kernels } from "./types.js";

export { loadNativeKernels, nativeLoadError } from "./native.js";
export { referenceKernels } from "./reference.js";
export type { FloatArray, Kernels } from "./types.js";

let warned = false;

/**
 * The kernels the trainer should use: the native addon when it is built (and `prefer` is not
 * "reference"), else the TypeScript reference with a one-line warning on stderr (once per process).
 */
export function getKernels(prefer: "native" | "reference" = "native"): Kernels {
  if (prefer === "reference") return referenceKernels;
  const native = loadNativeKernels();
  if (native !== null) return native;
  if (!warned) {
    warned = true;
    process.stderr.write(
      `synthmix: native kernels unavailable, using the slow TypeScript reference (${nativeLoadError()})\n`,
    );
  }
  return referenceKernels;
}
