// The addon is built with -march=native, so a machine with AVX-512 and one with only AVX2 run different
// machine code. Training must give the same bits on both (docs/train.md: Determinism): this builds a
// second copy of native/ for x86-64-v3 (AVX2 + FMA, no AVX-512), loads both, trains the same models with
// each and compares every parameter bit for bit. It caught a real difference: GCC compiled a scalar
// dot-product tail with one rounding under AVX-512 and another without, so the builds trained
// different bits (kernels.cc now writes that tail as an in-order fma).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, describe, it } from "node:test";
import { nativeAddon } from "../../src/train/kernels/native.js";
import type { Kernels } from "../../src/train/kernels/types.js";
import { GPT } from "../../src/train/model.js";
import { AdamW, clipGradNorm } from "../../src/train/optim.js";
import type { ModelConfig } from "../../src/train/schema.js";
import { Rng } from "../../src/util/rng.js";
import { optionalTool } from "../helpers/optional.js";

const root = join(import.meta.dirname, "..", "..");

/** node-gyp as npm runs it (npm sets npm_config_node_gyp for scripts), else the one npm bundles. */
function nodeGyp(): string {
  const fromNpm = process.env.npm_config_node_gyp;
  if (fromNpm && existsSync(fromNpm)) return fromNpm;
  return join(
    dirname(process.execPath),
    "..",
    "lib",
    "node_modules",
    "npm",
    "node_modules",
    "node-gyp",
    "bin",
    "node-gyp.js",
  );
}

const tool = optionalTool(
  "a second (x86-64-v3) build of the native addon",
  () => {
    if (process.arch !== "x64") return `the ${process.arch} build has one vector width (x64 only)`;
    if (nativeAddon() === null) return "the native addon is not built";
    return existsSync(nodeGyp()) || `node-gyp not found at ${nodeGyp()}`;
  },
  "`npm ci` with a C++ compiler, on x86-64",
);

/** Builds native/ into a temporary package with -march=x86-64-v3 and returns the loaded addon. */
function buildAvx2Addon(dir: string): Record<string, unknown> {
  cpSync(join(root, "native"), join(dir, "native"), { recursive: true });
  cpSync(join(root, "package.json"), join(dir, "package.json"));
  const gyp = readFileSync(join(root, "binding.gyp"), "utf8");
  assert.ok(gyp.includes("-march=native"), "binding.gyp builds with -march=native");
  writeFileSync(join(dir, "binding.gyp"), gyp.replace("-march=native", "-march=x86-64-v3"));
  // node-addon-api is resolved from the package's node_modules by binding.gyp
  cpSync(join(root, "node_modules", "node-addon-api"), join(dir, "node_modules", "node-addon-api"), {
    recursive: true,
  });
  const nodedir = process.env.npm_config_nodedir ? [`--nodedir=${process.env.npm_config_nodedir}`] : [];
  const r = spawnSync(process.execPath, [nodeGyp(), "rebuild", ...nodedir], { cwd: dir, encoding: "utf8" });
  assert.equal(r.status, 0, `node-gyp failed:\n${r.stdout}\n${r.stderr}`);
  return createRequire(join(dir, "index.js"))(join(dir, "build", "Release", "synthmix_kernels.node"));
}

/** Trains `steps` AdamW steps of cfg on fixed random batches with kernels k and returns the parameters. */
function train(k: Kernels, cfg: ModelConfig, B: number, steps: number): Float32Array {
  const m = new GPT(cfg, k, B, cfg.contextLength);
  m.init(7);
  const opt = new AdamW(m, k, { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 });
  const rng = new Rng(3);
  const n = B * cfg.contextLength;
  for (let s = 0; s < steps; s++) {
    const x = Int32Array.from({ length: n }, () => rng.int(cfg.vocabSize));
    const y = Int32Array.from({ length: n }, () => rng.int(cfg.vocabSize));
    m.zeroGrad();
    m.forward(x, y);
    m.backward();
    clipGradNorm(m.grads, 1, k);
    opt.step(3e-3);
  }
  return Float32Array.from(m.params);
}

describe("builds for different CPUs", { skip: tool.skip }, () => {
  const dir = mkdtempSync(join(tmpdir(), "synthmix-avx2-build-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("an x86-64-v3 (AVX2) build trains the same bits as the -march=native build", () => {
    tool.require();
    const native = nativeAddon() as unknown as Kernels & { setThreads(n: number): void };
    const avx2 = buildAvx2Addon(dir) as unknown as Kernels & { setThreads(n: number): void; isa(): string };
    assert.equal(avx2.isa(), "avx2");
    // Shapes with remainders everywhere: head size 20, T = 50 (not a multiple of 16), V = 301, C = 40.
    const configs: [ModelConfig, number][] = [
      [{ vocabSize: 301, contextLength: 50, dModel: 40, nLayer: 2, nHead: 2 }, 3],
      [{ vocabSize: 512, contextLength: 64, dModel: 64, nLayer: 1, nHead: 2 }, 4],
    ];
    for (const threads of [1, 2]) {
      native.setThreads(threads);
      avx2.setThreads(threads);
      for (const [cfg, B] of configs) {
        const a = train({ ...native, name: "native" }, cfg, B, 4);
        const b = train({ ...avx2, name: "native" }, cfg, B, 4);
        const at = a.findIndex((v, i) => !Object.is(v, b[i]));
        assert.equal(
          at,
          -1,
          `d${cfg.dModel} T${cfg.contextLength}, ${threads} threads: parameter ${at} differs (${a[at]} vs ${b[at]})`,
        );
      }
    }
  });
});
