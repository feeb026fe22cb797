/**
 * GFLOP/s of the native matmul products (forward out = inp·Wᵀ, backward dinp += dout·W and
 * dW += doutᵀ·inp) against PyTorch/OpenBLAS on the CPU, measured side by side in one run, for 1 and 2
 * threads. The peers run as child processes (/usr/bin/python3 bench/peers/matmul_torch.py, one per
 * thread count, OPENBLAS_CORETYPE from bench/peers/env.ts) answering one measurement per request, so that ours and
 * theirs alternate shape by shape and see the same machine load.
 *
 *   npx tsx bench/kernels.ts [--reps 10] [--rounds 3] [--shapes 512x96x384,512x384x96] [--threads 1]
 *       [--matmul-only]
 *
 * --shapes replaces the default BT x C x OC list (e.g. the demo grid's B8 x T64 products); --threads
 * times only that thread count; --matmul-only skips the other layer kernels (so does --threads 2: they are
 * timed on 1 thread).
 *
 * Each number is the best over `rounds` interleaved rounds of the best of `reps` timed calls (the
 * minimum is the least noisy statistic on a shared machine); 1-thread calls are timed by CPU time,
 * 2-thread calls by the wall clock.
 */
import { spawn } from "node:child_process";
import { loadavg } from "node:os";
import { createInterface } from "node:readline";
import { nativeAddon, nativeLoadError } from "../src/train/kernels/native.js";
import { openblasEnv, openblasNote } from "./peers/env.js";

type Op = "forward" | "dinp" | "dweight";
const OPS: Op[] = ["forward", "dinp", "dweight"];
const shapesArg = process.argv.indexOf("--shapes");
const SHAPES: [number, number, number][] =
  shapesArg > 0
    ? process.argv[shapesArg + 1].split(",").map((s) => {
        const d = s.split("x").map(Number);
        if (d.length !== 3 || d.some((v) => !Number.isInteger(v) || v <= 0)) {
          throw new Error(`--shapes: '${s}' is not BTxCxOC (e.g. 512x96x384)`);
        }
        return d as [number, number, number];
      })
    : process.argv.includes("--quick")
      ? [[2048, 64, 64]]
      : [
          [2048, 256, 768],
          [2048, 256, 1024],
          [2048, 256, 256],
          [2048, 1024, 256],
          [2048, 64, 64],
          [2048, 64, 192],
          [2048, 64, 256],
          [2048, 64, 1024],
        ];

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
}
const REPS = arg("--reps", 10);
const THREADS = process.argv.includes("--threads") ? [arg("--threads", 1)] : [1, 2];
const MATMUL_ONLY = process.argv.includes("--matmul-only");
const ROUNDS = arg("--rounds", 3);

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

// Single-thread runs are timed by process CPU time: on a loaded machine that excludes the time the
// thread sat preempted, for both sides alike. Two-thread runs can only be timed by the wall clock.
type Clock = "cpu" | "wall";
function clockFor(threads: number): Clock {
  return threads === 1 ? "cpu" : "wall";
}

function bestSeconds(fn: () => void, clock: Clock): number {
  fn();
  let best = Number.POSITIVE_INFINITY;
  for (let r = 0; r < REPS; r++) {
    if (clock === "cpu") {
      const c0 = process.cpuUsage();
      fn();
      const d = process.cpuUsage(c0);
      best = Math.min(best, (d.user + d.system) / 1e6);
    } else {
      const t0 = process.hrtime.bigint();
      fn();
      best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e9);
    }
  }
  return best;
}

function ours(threads: number, BT: number, C: number, OC: number, op: Op): number {
  addon?.setThreads(threads);
  const inp = rnd(BT * C);
  const w = rnd(OC * C);
  const dout = rnd(BT * OC);
  // outputs are allocated once, outside the timed calls
  const out = new Float32Array(BT * OC);
  const dinp = new Float32Array(BT * C);
  const dw = new Float32Array(OC * C);
  const fns: Record<Op, () => void> = {
    forward: () => addon?.matmulForward(out, inp, w, null, BT, C, OC),
    dinp: () => backward(dinp, null, null, dout, inp, w, BT, C, OC),
    dweight: () => backward(null, dw, null, dout, inp, w, BT, C, OC),
  };
  return (2 * BT * C * OC) / bestSeconds(fns[op], clockFor(threads)) / 1e9;
}

class Peer {
  private readonly lines: AsyncIterator<string>;
  constructor(threads: number) {
    const env = openblasEnv(threads, {
      OMP_NUM_THREADS: String(threads),
      // Keep freed blocks in glibc's heap (CPU torch has no caching allocator): otherwise every large
      // temporary is a fresh mmap whose page faults would be billed to torch.
      MALLOC_MMAP_THRESHOLD_: String(32 * 1024 * 1024),
      MALLOC_TRIM_THRESHOLD_: String(4 * 1024 * 1024 * 1024),
    });
    const child = spawn("/usr/bin/python3", ["bench/peers/matmul_torch.py"], {
      env,
      stdio: ["pipe", "pipe", "inherit"],
    });
    this.child = child;
    this.lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  }
  readonly child;
  async next(): Promise<Record<string, unknown>> {
    const r = await this.lines.next();
    if (r.done) throw new Error("torch peer exited (is python3-torch installed?)");
    return JSON.parse(r.value) as Record<string, unknown>;
  }
  async seconds(req: Record<string, unknown>): Promise<number> {
    this.child.stdin.write(`${JSON.stringify({ ...req, reps: REPS, clock: "cpu" })}\n`);
    return (await this.next()).seconds as number;
  }
  async gflops(BT: number, C: number, OC: number, op: Op, clock: Clock): Promise<number> {
    this.child.stdin.write(`${JSON.stringify({ BT, C, OC, op, reps: REPS, clock })}\n`);
    const r = await this.next();
    return (2 * BT * C * OC) / (r.seconds as number) / 1e9;
  }
}

async function main(): Promise<void> {
  if (addon === null) return;
  const peers = new Map(THREADS.map((t) => [t, new Peer(t)]));
  let torchVersion = "";
  for (const p of peers.values()) torchVersion = String((await p.next()).torch);
  const load0 = loadavg()[0];
  console.log(
    `native isa: ${addon.isa()}; torch ${torchVersion} (${openblasNote()}); reps ${REPS}, rounds ${ROUNDS}; load average (1 min) at start ${load0.toFixed(2)}`,
  );
  const best = new Map<string, [number, number]>();
  for (let round = 0; round < ROUNDS; round++) {
    for (const threads of THREADS) {
      for (const [BT, C, OC] of SHAPES) {
        for (const op of OPS) {
          const key = `${threads},${BT},${C},${OC},${op}`;
          const x = ours(threads, BT, C, OC, op);
          const y = await (peers.get(threads) as Peer).gflops(BT, C, OC, op, clockFor(threads));
          const prev = best.get(key) ?? [0, 0];
          best.set(key, [Math.max(prev[0], x), Math.max(prev[1], y)]);
        }
      }
    }
  }
  const layerPeer = MATMUL_ONLY ? undefined : peers.get(1);
  const layerRows = layerPeer ? await layers(layerPeer) : [];
  for (const p of peers.values()) p.child.stdin.end();
  console.log("");
  console.log("| threads | BT | C | OC | product | ours GFLOP/s | torch GFLOP/s | ratio |");
  console.log("|---|---|---|---|---|---|---|---|");
  const ratios: number[] = [];
  for (const threads of THREADS) {
    for (const [BT, C, OC] of SHAPES) {
      for (const op of OPS) {
        const [x, y] = best.get(`${threads},${BT},${C},${OC},${op}`) ?? [0, 0];
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
  if (layerRows.length === 0) return;
  console.log("");
  console.log(
    `Other layer kernels, 1 thread, CPU time per call (B=${LB} T=${LT} C=${LC} NH=${LNH} V=${LV}, AdamW N=${LN}):`,
  );
  console.log("");
  console.log("| kernel | ours ms | torch ms | speed-up |");
  console.log("|---|---|---|---|");
  for (const [name, x, y] of layerRows)
    console.log(`| ${name} | ${(x * 1e3).toFixed(3)} | ${(y * 1e3).toFixed(3)} | ${(y / x).toFixed(2)} |`);
  addon.setThreads(2);
}

const [LB, LT, LC, LNH, LV, LN] = [8, 256, 256, 4, 2048, 4_000_000];

/** The non-matmul kernels at one GPT-ish layer shape, ours vs torch, best over rounds, CPU time. */
async function layers(peer: Peer): Promise<[string, number, number][]> {
  if (addon === null) return [];
  addon.setThreads(1);
  const BT = LB * LT;
  const qkv = rnd(BT * 3 * LC);
  const out = new Float32Array(BT * LC);
  const att = new Float32Array(LB * LNH * LT * LT);
  const scratch = new Float32Array(LB * LNH * LT * LT);
  const dqkv = new Float32Array(BT * 3 * LC);
  const dout = rnd(BT * LC);
  const x4 = rnd(BT * 4 * LC);
  const y4 = new Float32Array(BT * 4 * LC);
  const [mean, rstd, w, b] = [new Float32Array(BT), new Float32Array(BT), rnd(LC), rnd(LC)];
  const logits = rnd(BT * LV);
  const dlogits = new Float32Array(BT * LV);
  const losses = new Float32Array(BT);
  const targets = Int32Array.from({ length: BT }, (_, i) => (i * 7919) % LV);
  const [p, g, m, v] = [rnd(LN), rnd(LN), new Float32Array(LN), new Float32Array(LN)];
  addon.attentionForward(out, att, qkv, LB, LT, LC, LNH);
  const fns: [string, () => void][] = [
    ["attentionForward", () => addon?.attentionForward(out, att, qkv, LB, LT, LC, LNH)],
    ["attentionBackward", () => addon?.attentionBackward(dqkv, scratch, dout, qkv, att, LB, LT, LC, LNH)],
    ["layernormForward", () => addon?.layernormForward(out, mean, rstd, dout, w, b, BT, LC)],
    ["geluForward", () => addon?.geluForward(y4, x4, BT * 4 * LC)],
    ["crossEntropy", () => addon?.crossEntropyForward(losses, dlogits, logits, targets, BT, LV, 1 / BT)],
    ["adamw", () => addon?.adamwUpdate(p, g, m, v, LN, 1e-3, 0.9, 0.95, 1e-8, 0.1, 5)],
  ];
  const rows: [string, number, number][] = [];
  for (const [name, fn] of fns) {
    let ours = Number.POSITIVE_INFINITY;
    let theirs = Number.POSITIVE_INFINITY;
    for (let round = 0; round < ROUNDS; round++) {
      ours = Math.min(ours, bestSeconds(fn, "cpu"));
      theirs = Math.min(
        theirs,
        await peer.seconds({ layer: name, B: LB, T: LT, C: LC, NH: LNH, V: LV, N: LN }),
      );
    }
    rows.push([name, ours, theirs]);
  }
  return rows;
}

await main();
