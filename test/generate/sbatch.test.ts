import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { test } from "node:test";

/**
 * examples/slurm/generate-vllm.sbatch run as two array tasks at once (the Slurm variables set by hand,
 * a fault server in place of vLLM, the CLI from source on PATH): both shards complete, and the folder
 * holds every document exactly once.
 */
test("sbatch example: two array tasks, each with its own server, complete the folder", async () => {
  const repo = resolve(".");
  // Absolute: the tasks run in the workspace, where `--import tsx` would not resolve.
  const tsx = import.meta.resolve("tsx");
  const ws = mkdtempSync(join(tmpdir(), "synthmix-sbatch-"));
  const n = 10;
  mkdirSync(join(ws, "corpus", "toy"), { recursive: true });
  writeFileSync(
    join(ws, "corpus", "toy", "train.jsonl"),
    Array.from({ length: n }, (_, i) =>
      JSON.stringify({ id: `t:${i}`, text: `Document ${i} about thing ${i}.` }),
    ).join("\n"),
  );
  const bin = join(ws, "bin");
  mkdirSync(bin);
  writeFileSync(
    join(bin, "synthmix"),
    `#!/bin/sh\nexec "${process.execPath}" --import ${tsx} "${repo}/test/generate/cli-main.ts" "$@"\n`,
  );
  chmodSync(join(bin, "synthmix"), 0o755);
  const task = (id: number) =>
    new Promise<{ code: number; err: string }>((done) => {
      const port = 20000 + ((process.pid * 2 + id) % 20000);
      const child = spawn("bash", [join(repo, "examples", "slurm", "generate-vllm.sbatch")], {
        cwd: ws,
        env: {
          ...process.env,
          PATH: `${bin}:${process.env.PATH}`,
          SLURM_ARRAY_JOB_ID: "42",
          SLURM_ARRAY_TASK_ID: String(id),
          SLURM_ARRAY_TASK_COUNT: "2",
          SLURM_ARRAY_TASK_MIN: "0",
          WORKSPACE: ws,
          CORPUS: "toy",
          NAME: "fake",
          PORT: String(port),
          SERVER_CMD: `${process.execPath} --import ${tsx} ${repo}/test/generate/fake-server-main.ts ${port} ${id}`,
        },
        stdio: ["ignore", "ignore", "pipe"],
      });
      let err = "";
      child.stderr.on("data", (c) => {
        err += c;
      });
      child.on("exit", (code) => done({ code: code ?? -1, err }));
    });
  const [a, b] = await Promise.all([task(0), task(1)]);
  assert.equal(a.code, 0, a.err);
  assert.equal(b.code, 0, b.err);
  const dir = join(ws, "synthetic", "hq-fake");
  const ids = readdirSync(dir)
    .filter((f) => f.startsWith("part-"))
    .flatMap((f) => readFileSync(join(dir, f), "utf8").split("\n"))
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l).id as string);
  assert.equal(ids.length, n);
  assert.equal(new Set(ids).size, n);
  const statuses = readdirSync(dir).filter((f) => f.startsWith("status-"));
  assert.deepEqual(statuses.sort(), ["status-s0000of0002.json", "status-s0001of0002.json"]);
});
