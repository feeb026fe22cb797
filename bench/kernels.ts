/**
 * GFLOP/s of the native matmul products (forward out = inp·Wᵀ, backward dinp += dout·W and
 * dW += doutᵀ·inp) against PyTorch/OpenBLAS on the CPU, measured side by side in one run, for 1 and 2
 * threads. The peer runs as a child process: /usr/bin/python3 bench/peers/matmul_torch.py.
 *
 *   npx tsx bench/kernels.ts [--reps 15]
 *
 * Each number is the best of `reps` timed calls (the minimum is the least noisy statistic on a shared
 * machine); ours and the peer's alternate per thread count so both see similar load.
 */
import { spawnSync } from "node:child_process";
import { loadavg } from "node:os";
import { nativeAddon, nativeLoadError } from "../src/train/kernels/native.js";

type Op = "forward" | "dinp" | "dweight";
const OPS: Op[] = ["forward", "dinp", "dweight"];
const SHAPES: [number, number, number][] = [
  [2048, 256, 768],
  [2048, 256, 1024],
  [2048, 256, 256],
  [2048, 1024, 256],
  [2048, 64, 64],
  [2048, 64, 192],
  [2048, 64, 256],
  [2048, 64, 1024],
];

const repsArg = process.argv.indexOf("--reps");
const REPS = repsArg > 0 ? Number(process.argv[repsArg + 1]) : 15;

const addon = nativeAddon();
if (addon === null) {
  console.error(`native addon not built: ${nativeLoadError()}`);
  process.exit(1);
}
// The native matmulBackward accepts null for dinp or dweight, so each product can be timed alone.
type NullableBackward = (
  dinp: Float32Array | null,
  dweight: Float32Array | null,
  dbias: null,
  dout: Float32Array,
  inp: Float32Array,
  weight: Float32Array,
  BT: number,
  C: number,
  OC: number,
) => void;
const backward = addon.matmulBackward as unknown as NullableBackward;

function rnd(n: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = Math.sin(i * 12.9898) * 0.5;
  return a;
}

function bestSeconds(fn: () => void): number {
  fn();
  let best = Number.POSITIVE_INFINITY;
  for (let r = 0; r < REPS; r++) {
    const t0 = process.hrtime.bigint();
    fn();
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e9);
  }
  return best;
}

function ours(threads: number): Map<string, number> {
  addon?.setThreads(threads);
  const res = new Map<string, number>();
  for (const [BT, C, OC] of SHAPES) {
    const inp = rnd(BT * C);
    const w = rnd(OC * C);
    const out = new Float32Array(BT * OC);
    const dout = rnd(BT * OC);
    const dinp = new Float32Array(BT * C);
    const dw = new Float32Array(OC * C);
    const flops = 2 * BT * C * OC;
    const fns: Record<Op, () => void> = {
      forward: () => addon?.matmulForward(out, inp, w, null, BT, C, OC),
      dinp: () => backward(dinp, null, null, dout, inp, w, BT, C, OC),
      dweight: () => backward(null, dw, null, dout, inp, w, BT, C, OC),
    };
    for (const op of OPS) res.set(`${BT},${C},${OC},${op}`, flops / bestSeconds(fns[op]) / 1e9);
  }
  return res;
}

function peer(threads: number): Map<string, number> {
  const env = {
    ...process.env,
    OPENBLAS_CORETYPE: "SkylakeX",
    OPENBLAS_NUM_THREADS: String(threads),
    OMP_NUM_THREADS: String(threads),
  };
  const r = spawnSync(
    "/usr/bin/python3",
    ["bench/peers/matmul_torch.py", JSON.stringify(SHAPES), String(REPS)],
    {
      env,
      encoding: "utf8",
    },
  );
  if (r.status !== 0) throw new Error(`peer failed: ${r.stderr || r.error}`);
  const res = new Map<string, number>();
  for (const line of r.stdout.trim().split("\n")) {
    const o = JSON.parse(line) as { BT: number; C: number; OC: number; op: Op; gflops: number };
    res.set(`${o.BT},${o.C},${o.OC},${o.op}`, o.gflops);
  }
  return res;
}

const load0 = loadavg()[0];
console.log(`native isa: ${addon.isa()}; reps ${REPS}; load average (1 min) at start ${load0.toFixed(2)}`);
console.log("");
console.log("| threads | BT | C | OC | product | ours GFLOP/s | torch GFLOP/s | ratio |");
console.log("|---|---|---|---|---|---|---|---|");
const ratios: number[] = [];
for (const threads of [1, 2]) {
  const a = ours(threads);
  const b = peer(threads);
  for (const [BT, C, OC] of SHAPES) {
    for (const op of OPS) {
      const key = `${BT},${C},${OC},${op}`;
      const x = a.get(key) ?? Number.NaN;
      const y = b.get(key) ?? Number.NaN;
      ratios.push(x / y);
      console.log(
        `| ${threads} | ${BT} | ${C} | ${OC} | ${op} | ${x.toFixed(1)} | ${y.toFixed(1)} | ${(x / y).toFixed(2)} |`,
      );
    }
  }
}
const geo = Math.exp(ratios.reduce((s, r) => s + Math.log(r), 0) / ratios.length);
console.log("");
console.log(
  `geometric-mean ratio ours/torch: ${geo.toFixed(2)} (min ${Math.min(...ratios).toFixed(2)}); load average at end ${loadavg()[0].toFixed(2)}`,
);
addon.setThreads(2);
