import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { acquireSweepLock } from "../../src/sweep/registry.js";
import { liveHolder, readLockHolder, tryLock } from "../../src/util/lock.js";

const dir = () => mkdtempSync(join(tmpdir(), "synthmix-lock-"));
/** A pid that surely is not running: a child that has exited. */
const deadPid = () => spawnSync(process.execPath, ["-e", "0"]).pid!;
const otherHost = (path: string, ageMs: number) => {
  writeFileSync(path, `${JSON.stringify({ host: "node-b.cluster", pid: process.pid, token: "b" })}\n`);
  const t = new Date(Date.now() - ageMs);
  utimesSync(path, t, t);
};

test("lock: exclusive create, holder recorded, released only by its holder", () => {
  const path = join(dir(), "x.lock");
  const a = tryLock(path);
  assert.ok(a);
  const h = readLockHolder(path)!;
  assert.equal(h.host, hostname());
  assert.equal(h.pid, process.pid);
  assert.equal(tryLock(path), null, "a second taker in the same process is refused");
  // Someone else's lock at the same path (ours was broken and retaken): our release must not remove it.
  writeFileSync(path, `${JSON.stringify({ host: hostname(), pid: process.pid, token: "other" })}\n`);
  a.release();
  assert.ok(existsSync(path));
  writeFileSync(path, ""); // clear for the next step: an empty (half-written) file with a fresh mtime
  assert.equal(tryLock(path), null, "a half-written lock with a fresh mtime is respected");
});

test("lock: a dead holder on this host is broken at once (also the old pid-only format)", () => {
  const d = dir();
  for (const content of [
    `${JSON.stringify({ host: hostname(), pid: deadPid(), token: "dead" })}\n`,
    `${deadPid()}\n`,
  ]) {
    const path = join(d, "y.lock");
    writeFileSync(path, content);
    assert.equal(liveHolder(path, readLockHolder(path)!), undefined);
    const got = tryLock(path) ?? tryLock(path);
    assert.ok(got, `taken over from ${content.trim()}`);
    assert.equal(readLockHolder(path)!.pid, process.pid);
    got.release();
    assert.ok(!existsSync(path));
  }
});

test("lock: another host's lock counts while its heartbeat is fresh, and is broken once stale", () => {
  const path = join(dir(), "z.lock");
  otherHost(path, 5_000);
  assert.match(liveHolder(path, readLockHolder(path)!)!, /on node-b\.cluster, heartbeat \d+ s ago/);
  assert.equal(tryLock(path), null);
  assert.equal(tryLock(path), null, "a pid of another host is never checked locally");
  otherHost(path, 11 * 60_000);
  assert.equal(liveHolder(path, readLockHolder(path)!), undefined);
  const got = tryLock(path) ?? tryLock(path);
  assert.ok(got);
  assert.equal(readLockHolder(path)!.host, hostname());
  got.release();
  // A custom staleness applies too.
  otherHost(path, 3_000);
  assert.ok(tryLock(path, { staleMs: 1_000 }) === null);
  assert.ok(tryLock(path, { staleMs: 1_000 }), "stale after 1 s by the caller's rule");
});

test("lock: the holder's heartbeat keeps the mtime fresh", async () => {
  const path = join(dir(), "h.lock");
  const held = tryLock(path, { heartbeatMs: 30 })!;
  const old = new Date(Date.now() - 60_000);
  utimesSync(path, old, old);
  await new Promise((r) => setTimeout(r, 200));
  assert.ok(Date.now() - statSync(path).mtimeMs < 5_000, "touched by the heartbeat");
  held.release();
});

test("lock: contending processes never hold it together", async () => {
  const d = dir();
  const lock = join(d, "c.lock");
  const marker = join(d, "inside");
  const fixture = join(import.meta.dirname, "fixtures", "lock-contender.ts");
  const codes = await Promise.all(
    [0, 1, 2].map(
      () =>
        new Promise<[number | null, string]>((res) => {
          const c = spawn(process.execPath, ["--import", "tsx", fixture, lock, marker, "8"], {
            stdio: ["ignore", "ignore", "pipe"],
          });
          let err = "";
          c.stderr.on("data", (b) => (err += b));
          c.on("exit", (code) => res([code, err]));
        }),
    ),
  );
  for (const [code, err] of codes) assert.equal(code, 0, err);
  assert.ok(!existsSync(lock), "every contender released");
});

test("sweep lock: refused while another host's sweep holds it, taken over when its heartbeat stops", () => {
  const ws = dir();
  const path = join(ws, "runs", ".sweep.lock");
  const release = acquireSweepLock(ws);
  assert.throws(() => acquireSweepLock(join(ws, "")), /another sweep \(pid \d+\)/);
  release();
  otherHost(path, 1_000);
  assert.throws(
    () => acquireSweepLock(ws),
    (e: Error & { hint?: string }) => {
      assert.match(e.message, /another sweep \(pid \d+ on node-b\.cluster, heartbeat \d+ s ago\)/);
      return true;
    },
  );
  otherHost(path, 20 * 60_000);
  const again = acquireSweepLock(ws);
  assert.equal(JSON.parse(readFileSync(path, "utf8")).host, hostname());
  again();
});
