import assert from "node:assert/strict";
import { test } from "node:test";
import { configJsonSchema } from "../../src/cli/schema.js";
import { StudyConfigSchema } from "../../src/study/config.js";

interface JsonSchema {
  type?: string;
  properties?: Record<string, JsonSchema & { default?: unknown }>;
  additionalProperties?: unknown;
  required?: string[];
}

test("synthmix schema study|grid|corpus: JSON Schema generated from the zod schemas", () => {
  const study = configJsonSchema("study") as JsonSchema;
  assert.equal(study.type, "object");
  assert.deepEqual(Object.keys(study.properties ?? {}).sort(), Object.keys(StudyConfigSchema.shape).sort());
  assert.equal(study.additionalProperties, false, "strict objects reject unknown keys in editors too");
  const grid = configJsonSchema("grid") as JsonSchema;
  const gridObj = grid.properties?.grid as JsonSchema;
  assert.ok(gridObj.properties?.models, "grid.models is described");
  const corpus = configJsonSchema("corpus") as JsonSchema;
  assert.equal(corpus.properties?.testBy?.default, "group");
  assert.throws(() => configJsonSchema("nope"), /unknown config "nope"[\s\S]*/);
});
