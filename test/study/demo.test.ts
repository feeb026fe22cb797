import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { StudyConfigSchema, studyGeneratorModels } from "../../src/study/config.js";
import { demoConfig, QUICK_NOTE } from "../../src/study/demo.js";
import { formatPlan, GEN_TOKENS_PER_SEC, planStudy } from "../../src/study/plan.js";
import {
  type LoadedStudy,
  runStudy,
  studyGenerators,
  studyStageKeys,
  studySweepSpec,
} from "../../src/study/run.js";
import { autoBudgets, sourceNeeds } from "../../src/study/supply.js";
import { planSweep } from "../../src/sweep/plan.js";
import { fmtNum } from "../../src/util/progress.js";

function loaded(quick: boolean, workspace: string): LoadedStudy {
  return { config: StudyConfigSchema.parse(demoConfig(quick)), workspace, baseDir: workspace };
}

test("the full demo's design: no repeats, 2 generators, 2 seeds, WSD ladders, ratio cells of >= 5 ratios x 3 seeds", () => {
  const ws = "/nonexistent-ws";
  const study = loaded(false, ws);
  const { config } = study;
  assert.equal(config.sweep.allowRepeat, false);
  const gens = studyGeneratorModels(config).map((g) => g.name);
  assert.equal(gens.length, 2, "two self-trained generators");
  assert.notEqual(studyGeneratorModels(config)[0].model, studyGeneratorModels(config)[1].model);
  const spec = studySweepSpec(study, gens);
  const runs = planSweep(spec, ws, config.tokenizer.vocabSize);
  // Main grid: every model x budget x mixture has 2 seeds, as WSD ladders.
  const cells = new Map<string, Set<number>>();
  for (const r of runs.filter((x) => x.mixture.generator !== "gen-s1")) {
    const k = `${r.modelName}/${r.tokens}/${r.mixture.label}`;
    cells.set(k, (cells.get(k) ?? new Set()).add(r.seed));
  }
  for (const [k, seeds] of cells) assert.ok(seeds.size >= 2, `${k} has ${seeds.size} seed(s)`);
  const main = config.sweep.grid!;
  assert.ok(main.models.length >= 4 && main.tokens.length >= 4, "at least 4 models x 4 budgets");
  assert.equal(config.sweep.train.optimizer?.schedule, "wsd");
  assert.ok(
    runs.every((r) => r.config.wsd?.ladder.includes(r.tokens)),
    "every run a WSD branch",
  );
  // Each model trains with its own LR.
  const lrs = new Map(runs.map((r) => [r.modelName, r.config.optimizer.lr]));
  assert.ok(new Set(lrs.values()).size >= 2, "per-model learning rates");
  // The smallest model runs far past 20 tokens per parameter.
  const smallest = Math.min(...runs.map((r) => r.nonEmbeddingParams));
  const maxD = Math.max(...runs.map((r) => r.tokens));
  assert.ok(maxD / smallest > 100, `smallest model reaches ${maxD / smallest} tokens/param`);
  // Ratio cells: >= 5 distinct ratios strictly inside (0, 1), each with 3 seeds; r = 1 nowhere.
  const ratioCells = new Map<string, Map<number, Set<number>>>();
  for (const r of runs.filter((x) => x.mixture.synthetic === "hq" && x.mixture.generator === "gen-s2")) {
    const k = `${r.modelName}/${r.tokens}`;
    const m = ratioCells.get(k) ?? new Map<number, Set<number>>();
    m.set(r.mixture.ratio, (m.get(r.mixture.ratio) ?? new Set()).add(r.seed));
    ratioCells.set(k, m);
  }
  const studied = [...ratioCells.values()].filter((m) => m.size >= 5);
  assert.equal(studied.length, 2, "two ratio-study cells");
  for (const m of studied) {
    for (const [ratio, seeds] of m) {
      assert.ok(ratio > 0 && ratio < 1, `ratio ${ratio}`);
      assert.equal(seeds.size, 3, `ratio ${ratio} has ${seeds.size} seeds`);
    }
  }
  assert.ok(!runs.some((r) => r.mixture.ratio === 1), "r = 1 is kept out");
  // The "auto" generation budget covers the largest need of every synthetic source.
  const budgets = autoBudgets(spec, ws, config.tokenizer.vocabSize, ["hq", "qa", "txbk"], gens, 0.05);
  for (const n of sourceNeeds(runs)) {
    if (n.name === "natural") continue;
    const g = gens.find((x) => n.path.endsWith(`${n.name}-${x}`));
    assert.ok(g, n.path);
    assert.ok(
      (budgets.get(`${n.name}\u0000${g}`) ?? 0) >= n.tokens,
      `${n.name}-${g} budget below ${n.tokens}`,
    );
  }
  // Natural text is never repeated: the largest natural need fits the Brown train split (~2.5M tokens
  // at vocab 512).
  assert.equal(config.tokenizer.vocabSize, 512);
  const natural = sourceNeeds(runs).find((n) => n.name === "natural");
  assert.ok(natural && natural.tokens <= 2_400_000);
});

test("the quick demo runs end to end, and its report and summary say its grid identifies nothing", async () => {
  const ws = mkdtempSync(join(tmpdir(), "synthmix-quick-demo-"));
  const r = await runStudy(loaded(true, ws), { progress: "silent", log: () => {} });
  assert.equal(r.failedRuns.length, 0);
  assert.ok(r.reportHtml && existsSync(r.reportHtml));
  const summary = readFileSync(join(ws, "report", "summary.md"), "utf8");
  const html = readFileSync(r.reportHtml, "utf8");
  for (const [name, text] of [
    ["summary.md", summary],
    ["index.html", html],
  ]) {
    assert.match(text, /identifies nothing/i, `${name} does not say the grid identifies nothing`);
    assert.ok(text.includes("QUICK DEMO: THIS GRID IDENTIFIES NOTHING"), `${name} lacks the quick note`);
  }
  assert.match(QUICK_NOTE, /identifies nothing/i);
  const rows = JSON.parse(readFileSync(join(ws, "results", "runs.json"), "utf8")).rows as unknown[];
  assert.ok(rows.length >= 24, `${rows.length} result rows`);
});

test("the plan's generation estimate: the native engine's assumed rate per thread, or a loud fallback at a tenth of it", async () => {
  const study = loaded(true, mkdtempSync(join(tmpdir(), "synthmix-plan-")));
  const plan = await planStudy(study);
  assert.equal(plan.generation.fallback, null, "the native addon is built here, so the native engine runs");
  // Two engines per study thread (NATIVE_ENGINES_PER_THREAD) decode on every thread.
  assert.equal(plan.generation.tokensPerSec, GEN_TOKENS_PER_SEC * study.config.threads);
  assert.doesNotMatch(formatPlan(plan), /WARNING/);
  const seconds = plan.generation.seconds;
  assert.ok(seconds !== null && seconds > 0, "self-trained generators get a time estimate");
  // What planStudy reports when the addon is missing (decodeKernels() gives an error):
  const slow = {
    ...plan,
    generation: { ...plan.generation, fallback: "not built", tokensPerSec: GEN_TOKENS_PER_SEC / 10 },
  };
  const text = formatPlan(slow);
  assert.match(text, /WARNING: the native decode engine is unavailable \(not built\)/);
  assert.ok(text.includes(`at an assumed ${fmtNum(GEN_TOKENS_PER_SEC / 10)} tok/s`), text);
});

test("the self-trained generators decode on two engines per study thread; engines stay out of the stage key", () => {
  const ws = mkdtempSync(join(tmpdir(), "synthmix-engines-"));
  const two = loaded(true, ws);
  const one: LoadedStudy = { ...two, config: { ...two.config, threads: 1 } };
  const specs = studyGenerators(two);
  assert.ok(
    specs.length > 0 && specs.every((s) => s.includes(`engines=${2 * two.config.threads}`)),
    specs.join(" "),
  );
  assert.ok(studyGenerators(one).every((s) => s.includes("engines=2")));
  // Same outputs whatever the engine count, so finished generation is not redone when it changes.
  assert.equal(studyStageKeys(one).keys.generate, studyStageKeys(two).keys.generate);
});
