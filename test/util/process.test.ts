import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { test } from "node:test";
import { processAlive } from "../../src/util/process.js";

test("processAlive: this process is alive, an exited child is not", () => {
  assert.equal(processAlive(process.pid), true);
  const child = spawnSync(process.execPath, ["-e", ""]);
  assert.equal(child.status, 0);
  assert.equal(processAlive(child.pid as number), false);
});
