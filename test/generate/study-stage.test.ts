import assert from "node:assert/strict";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { type StudyConfigInput, StudyConfigSchema } from "../../src/study/config.js";
import { type LoadedStudy, runStudy } from "../../src/study/run.js";
import { startFaultServer } from "./fake-server.js";

function study(workspace: string, url: string): LoadedStudy {
  const input: StudyConfigInput = {
    seed: 3,
    corpus: { from: "brown", maxDocs: 30, testFraction: 0.15, testBy: "domain" },
    tokenizer: { vocabSize: 300 },
    generate: {
      styles: ["hq"],
      generators: [`openai:${url}:m?name=fake&concurrency=4`],
      chunkTokens: 120,
      retries: 0,
    },
    sweep: {
      contextLength: 16,
      grid: {
        models: [{ name: "t1", nLayer: 1, dModel: 16, nHead: 2 }],
        tokens: [2048],
        mixtures: ["natural"],
      },
    },
  };
  return { config: StudyConfigSchema.parse(input), workspace, baseDir: workspace };
}

test("study: a generation with failed requests is not a complete stage; the rerun retries it; --until generate works", async () => {
  const srv = await startFaultServer({ seed: 11, rates: { "500": 0.3 } });
  try {
    const ws = mkdtempSync(join(tmpdir(), "synthmix-study-gen-"));
    const lines: string[] = [];
    const opts = {
      progress: "silent" as const,
      log: (l: string) => lines.push(l),
      until: "generate" as const,
    };
    await assert.rejects(
      runStudy(study(ws, srv.url), opts),
      /generation incomplete: fake: \d+ requests failed/,
    );
    const state = JSON.parse(readFileSync(join(ws, "study-state.json"), "utf8"));
    assert.equal(state.stages.generate.complete, false);
    srv.heal();
    const before = srv.counts.calls;
    lines.length = 0;
    // `--until generate` used to crash with "Cannot access 'failedRuns' before initialization".
    const r = await runStudy(study(ws, srv.url), opts);
    assert.deepEqual(r.failedRuns, []);
    assert.ok(srv.counts.calls > before, "the rerun sent the missing requests");
    assert.ok(!lines.includes("[generate] up to date, skipped"));
    assert.equal(
      JSON.parse(readFileSync(join(ws, "study-state.json"), "utf8")).stages.generate.complete,
      true,
    );
    lines.length = 0;
    const calls = srv.counts.calls;
    await runStudy(study(ws, srv.url), opts);
    assert.ok(lines.includes("[generate] up to date, skipped"));
    assert.equal(srv.counts.calls, calls);
  } finally {
    await srv.close();
  }
});
