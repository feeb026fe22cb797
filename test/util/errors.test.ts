import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { z } from "zod";
import { main } from "../../src/cli/main.js";
import { escapeForTerminal, formatError, SynthmixError } from "../../src/util/errors.js";

/** Run the CLI entry point in-process and capture what it prints on stderr. */
async function cli(...args: string[]): Promise<{ err: string; code: number | undefined }> {
  const lines: string[] = [];
  const orig = console.error;
  const prevCode = process.exitCode;
  process.exitCode = undefined;
  console.error = (...a: unknown[]) => lines.push(a.map(String).join(" "));
  try {
    await main(["node", "synthmix", ...args]);
    return { err: lines.join("\n"), code: process.exitCode as number | undefined };
  } finally {
    console.error = orig;
    process.exitCode = prevCode;
  }
}

const noStack = (s: string) => assert.doesNotMatch(s, /\n\s+at .+:\d+:\d+/, `a stack was printed:\n${s}`);

test("zod errors read as `<path>: <problem>` with a hint, no stack", () => {
  const r = z.object({ batchSize: z.number().int().positive() }).safeParse({ batchSize: 0 });
  assert.ok(!r.success);
  const s = formatError(r.error);
  assert.match(s, /^invalid options or config: batchSize: .*>\s?0/);
  assert.match(s, /hint: /);
  noStack(s);
});

test("file-system errors (ENOTDIR, EEXIST, ...) name the path and give a hint", () => {
  const dir = join(tmpdir(), `synthmix-err-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "file"), "x");
  let err: unknown;
  try {
    mkdirSync(join(dir, "file", "sub"));
  } catch (e) {
    err = e;
  }
  const s = formatError(err);
  assert.match(s, /^cannot mkdir .*file\/sub: not a directory\n {2}hint: a part of the path is a file/);
  noStack(s);
  const exists = Object.assign(new Error("EEXIST: file already exists, mkdir '/x'"), {
    code: "EEXIST",
    syscall: "mkdir",
    path: "/x",
  });
  assert.match(
    formatError(exists),
    /^cannot mkdir \/x: file already exists\n {2}hint: the path already exists/,
  );
  const full = Object.assign(new Error("ENOSPC: no space left on device, write"), {
    code: "ENOSPC",
    syscall: "write",
  });
  assert.match(formatError(full), /hint: the disk is full/);
});

test("unexpected errors print their message without a stack unless SYNTHMIX_DEBUG=1", () => {
  const e = new TypeError("boom");
  noStack(formatError(e));
  assert.match(formatError(e), /rerun with SYNTHMIX_DEBUG=1/);
  process.env.SYNTHMIX_DEBUG = "1";
  try {
    assert.match(formatError(e), /\n\s+at /);
  } finally {
    delete process.env.SYNTHMIX_DEBUG;
  }
});

test("bytes from a bad file are escaped before printing", () => {
  const s = formatError(new SynthmixError("X", "bad.jsonl:3: token \u001b[31mred\u0007 \u202e \ud800 ok"));
  assert.equal(s, "bad.jsonl:3: token \\x1b[31mred\\x07 \\u202e \\ud800 ok");
  assert.equal(escapeForTerminal("tab\tnew\nline 😀"), "tab\tnew\nline 😀");
});

test("the CLI prints `synthmix: <what> hint: <fix>` and exits non-zero", async () => {
  const dir = join(tmpdir(), `synthmix-cli-err-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "file"), "x");
  const missing = await cli("corpus", "import", "--from", join(dir, "nope.jsonl"), "--out", dir);
  assert.equal(missing.code, 1);
  assert.match(missing.err, /^synthmix: .*nope\.jsonl: no such file or folder\n {2}hint: /);
  noStack(missing.err);
  writeFileSync(join(dir, "a.jsonl"), '{"text":"hello there"}\n');
  const notDir = await cli("corpus", "import", "--from", join(dir, "a.jsonl"), "--out", join(dir, "file"));
  assert.equal(notDir.code, 1);
  assert.match(notDir.err, /^synthmix: cannot mkdir .*file.*: not a directory\n {2}hint: /);
  noStack(notDir.err);
});
