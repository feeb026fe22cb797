import assert from "node:assert/strict";
import { test } from "node:test";
import { baseProgram, STAGE_OF } from "../../src/cli/entry.js";
import { buildProgram } from "../../src/cli/main.js";

test("the lazy binary routes every top-level command to the module that registers it", async () => {
  const all = buildProgram().commands.map((c) => c.name());
  assert.deepEqual([...all].sort(), Object.keys(STAGE_OF).sort(), "STAGE_OF lists exactly the commands");
  for (const name of all) {
    const program = baseProgram();
    (await STAGE_OF[name]()).register(program);
    assert.ok(
      program.commands.some((c) => c.name() === name),
      `the module STAGE_OF gives "${name}" does not register it`,
    );
  }
});
