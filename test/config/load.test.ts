import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { z } from "zod";
import { ConfigError, loadConfigFile } from "../../src/config/index.js";

const schema = z.object({
  name: z.string(),
  corpus: z.object({
    testFraction: z.number().min(0).max(1).default(0.1),
    sources: z.array(z.object({ path: z.string() })).default([]),
  }),
});

function write(name: string, text: string): string {
  const dir = mkdtempSync(join(tmpdir(), "synthmix-config-"));
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

test("loads valid YAML and JSON with defaults applied", () => {
  const y = write("study.yaml", "name: s1\ncorpus:\n  sources:\n    - path: a.jsonl\n");
  assert.deepEqual(loadConfigFile(y, schema), {
    name: "s1",
    corpus: { testFraction: 0.1, sources: [{ path: "a.jsonl" }] },
  });
  const j = write("study.json", JSON.stringify({ name: "s2", corpus: { testFraction: 0.2 } }));
  assert.equal(loadConfigFile(j, schema).corpus.testFraction, 0.2);
});

test("a wrong type names the file, line and key path", () => {
  const p = write("study.yaml", "name: s1\ncorpus:\n  testFraction: lots\n");
  assert.throws(
    () => loadConfigFile(p, schema),
    (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.equal(e.message, `${p}:3: corpus.testFraction: expected number, got string`);
      assert.equal(e.issues[0].line, 3);
      return true;
    },
  );
});

test("array indices, missing keys and range errors are all reported", () => {
  const p = write("study.yaml", "corpus:\n  testFraction: 2\n  sources:\n    - path: a\n    - path: 7\n");
  try {
    loadConfigFile(p, schema);
    assert.fail("expected an error");
  } catch (e) {
    assert.ok(e instanceof ConfigError);
    const byPath = new Map(e.issues.map((i) => [i.path, i]));
    assert.match(byPath.get("name")!.message, /missing/);
    assert.equal(byPath.get("corpus.testFraction")!.line, 2);
    assert.equal(byPath.get("corpus.sources[1].path")!.line, 5);
    assert.match(byPath.get("corpus.sources[1].path")!.message, /expected string, got number/);
  }
});

test("JSON errors carry line numbers too; syntax errors name the line", () => {
  const j = write("c.json", '{\n  "name": "x",\n  "corpus": {\n    "testFraction": "0.1"\n  }\n}\n');
  assert.throws(
    () => loadConfigFile(j, schema),
    /c\.json:4: corpus\.testFraction: expected number, got string/,
  );
  const bad = write("bad.yaml", "name: [unclosed\ncorpus: {}\n");
  assert.throws(() => loadConfigFile(bad, schema), /bad\.yaml:\d+: syntax error/);
  assert.throws(
    () => loadConfigFile(join(tmpdir(), "nope-synthmix.yaml"), schema),
    /cannot read config file/,
  );
});

test("the corpus section schema validates through loadConfigFile with key paths", async () => {
  const { corpusConfigSchema } = await import("../../src/corpus/index.js");
  const ok = write(
    "corpus.yaml",
    "from: brown\ntestBy: group\nnearDedup:\n  threshold: 0.8\n  numPerm: 64\n",
  );
  // The schema holds every import default (CORPUS_DEFAULTS), so the parsed section carries them too.
  const { CORPUS_DEFAULTS } = await import("../../src/corpus/config.js");
  assert.deepEqual(loadConfigFile(ok, corpusConfigSchema), {
    ...CORPUS_DEFAULTS,
    from: "brown",
    testBy: "group",
    nearDedup: { threshold: 0.8, numPerm: 64 },
  });
  const bad = write("corpus.yaml", "from: brown\ntestBy: genre\nminChars: -3\ntypo: 1\n");
  assert.throws(
    () => loadConfigFile(bad, corpusConfigSchema),
    (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      const paths = e.issues.map((i) => `${i.line}:${i.path}`).sort();
      assert.deepEqual(paths, ["2:testBy", "3:minChars", "4:typo"]);
      assert.match(e.message, /corpus\.yaml:4: typo: unknown key/);
      return true;
    },
  );
});
