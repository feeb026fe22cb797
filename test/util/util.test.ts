import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { JsonlAppender, writeFileAtomic } from "../../src/util/atomic.js";
import { stableHash } from "../../src/util/hash.js";
import { readJsonl, readJsonlTolerant } from "../../src/util/jsonl.js";
import { deriveSeed, Rng } from "../../src/util/rng.js";

test("Rng is deterministic per seed and uniform enough", () => {
  const a = new Rng(42);
  const b = new Rng(42);
  const xs = Array.from({ length: 10000 }, () => a.next());
  assert.deepEqual(
    xs.slice(0, 5),
    Array.from({ length: 5 }, () => b.next()),
  );
  const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
  assert.ok(Math.abs(mean - 0.5) < 0.02, `mean ${mean}`);
  assert.ok(xs.every((x) => x >= 0 && x < 1));
  assert.notEqual(new Rng(43).next(), new Rng(42).next());
});

test("deriveSeed depends on every id and on order", () => {
  assert.equal(deriveSeed(1, "a", "b"), deriveSeed(1, "a", "b"));
  assert.notEqual(deriveSeed(1, "a", "b"), deriveSeed(1, "b", "a"));
  assert.notEqual(deriveSeed(1, "ab"), deriveSeed(1, "a", "b"));
});

test("stableHash ignores key order", () => {
  assert.equal(stableHash({ a: 1, b: [1, { c: 2, d: 3 }] }), stableHash({ b: [1, { d: 3, c: 2 }], a: 1 }));
  assert.notEqual(stableHash({ a: 1 }), stableHash({ a: 2 }));
});

test("atomic writes leave no temp files; JSONL appends survive a torn tail", async () => {
  const dir = mkdtempSync(join(tmpdir(), "synthmix-util-"));
  writeFileAtomic(join(dir, "x.json"), "{}");
  assert.deepEqual(readdirSync(dir), ["x.json"]);
  const app = new JsonlAppender(join(dir, "a.jsonl"));
  app.append([{ i: 1 }, { i: 2 }]);
  app.close();
  writeFileSync(join(dir, "a.jsonl"), `${readFileSync(join(dir, "a.jsonl"), "utf8")}{"i": 3, "tor`);
  assert.deepEqual(await readJsonlTolerant(join(dir, "a.jsonl")), [{ i: 1 }, { i: 2 }]);
  await assert.rejects(async () => {
    for await (const _ of readJsonl(join(dir, "a.jsonl"))) {
      // consume
    }
  }, /a\.jsonl:3: malformed JSON/);
});
