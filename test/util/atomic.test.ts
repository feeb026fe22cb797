import assert from "node:assert/strict";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import {
  AtomicFile,
  replaceDir,
  withAtomicFile,
  writeDirAtomic,
  writeFileAtomic,
} from "../../src/util/atomic.js";

const root = mkdtempSync(join(tmpdir(), "synthmix-atomic-"));
after(() => rmSync(root, { recursive: true, force: true }));

const ls = (dir: string) => readdirSync(dir).sort();

test("writeFileAtomic: string, buffer and list of buffers; creates the folder; no temp file left", () => {
  const dir = join(root, "files", "deep");
  writeFileAtomic(join(dir, "a.txt"), "héllo");
  writeFileAtomic(join(dir, "b.bin"), new Uint8Array([1, 2, 3]));
  writeFileAtomic(join(dir, "c.bin"), [new Uint8Array([1]), Buffer.from([]), Buffer.from([2, 3])]);
  assert.equal(readFileSync(join(dir, "a.txt"), "utf8"), "héllo");
  assert.deepEqual([...readFileSync(join(dir, "b.bin"))], [1, 2, 3]);
  assert.deepEqual([...readFileSync(join(dir, "c.bin"))], [1, 2, 3]);
  assert.deepEqual(ls(dir), ["a.txt", "b.bin", "c.bin"]);
});

test("AtomicFile: nothing is visible until commit; abort keeps the old file and removes the temp", () => {
  const path = join(root, "stream.bin");
  writeFileSync(path, "old");
  const f = new AtomicFile(path);
  f.write("new ");
  f.write(Buffer.from("data"));
  assert.equal(f.size, 8);
  assert.equal(readFileSync(path, "utf8"), "old", "the target is untouched before commit");
  assert.ok(existsSync(f.tmp));
  f.commit();
  assert.equal(readFileSync(path, "utf8"), "new data");
  assert.ok(!existsSync(f.tmp));
  assert.throws(() => f.write("x"), /after commit/);

  const g = new AtomicFile(path);
  g.write("half");
  g.abort();
  g.abort(); // idempotent
  assert.equal(readFileSync(path, "utf8"), "new data");
  assert.ok(!existsSync(g.tmp));
});

test("withAtomicFile commits on return and removes the temp on a throw", async () => {
  const path = join(root, "with", "out.txt");
  assert.equal(
    await withAtomicFile(path, (f) => {
      f.write("ok");
      return 7;
    }),
    7,
  );
  await assert.rejects(
    withAtomicFile(path, async (f) => {
      f.write("torn");
      throw new Error("interrupted");
    }),
    /interrupted/,
  );
  assert.equal(readFileSync(path, "utf8"), "ok");
  assert.deepEqual(ls(join(root, "with")), ["out.txt"]);
});

test("a buffer larger than one write call is written whole", () => {
  const path = join(root, "big.bin");
  const big = new Uint8Array(5 << 20).map((_, i) => i & 255);
  const f = new AtomicFile(path);
  f.write(big);
  f.commit();
  assert.deepEqual(readFileSync(path), Buffer.from(big));
});

test("writeDirAtomic swaps a complete folder in; a throw leaves the old folder and no temp", async () => {
  const parent = join(root, "dirs");
  const dir = join(parent, "corpus");
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "v"), "1");
  await writeDirAtomic(dir, (tmp) => writeFileSync(join(tmp, "v"), "2"));
  assert.equal(readFileSync(join(dir, "v"), "utf8"), "2");
  assert.deepEqual(ls(parent), ["corpus"]);
  await assert.rejects(
    writeDirAtomic(dir, (tmp) => {
      writeFileSync(join(tmp, "v"), "3");
      throw new Error("boom");
    }),
    /boom/,
  );
  assert.equal(readFileSync(join(dir, "v"), "utf8"), "2");
  assert.deepEqual(ls(parent), ["corpus"]);
});

test("replaceDir with a fixed old name (the checkpoint layout) ends with only the new folder", () => {
  const parent = join(root, "ckpt");
  mkdirSync(join(parent, "checkpoint"), { recursive: true });
  mkdirSync(join(parent, "checkpoint.old"), { recursive: true }); // left by an earlier kill
  mkdirSync(join(parent, "checkpoint.tmp"));
  writeFileSync(join(parent, "checkpoint.tmp", "state.json"), "{}");
  replaceDir(join(parent, "checkpoint.tmp"), join(parent, "checkpoint"), join(parent, "checkpoint.old"));
  assert.deepEqual(ls(parent), ["checkpoint"]);
  assert.deepEqual(ls(join(parent, "checkpoint")), ["state.json"]);
});
