import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import {
  LLMC_HEADER_BYTES,
  llmcHeader,
  llmcShardPath,
  parseLlmcHeader,
  rawTokensToLlmc,
  readLlmcShard,
  writeLlmcShard,
} from "../../src/formats/llmc.js";
import { writeMixtureManifest, writeTestSetManifest } from "../../src/mix/manifest.js";
import { encodeTokens } from "../../src/util/tokenfile.js";
import { runCliCaptured, runCliJson } from "../helpers/capture.js";
import { optionalTool, pythonModules } from "../helpers/optional.js";

const root = mkdtempSync(join(tmpdir(), "synthmix-llmc-"));
after(() => rmSync(root, { recursive: true, force: true }));

/** Ids with a known pattern that uses the full width (so a byte-order or width slip shows). */
function ids(n: number, max: number): number[] {
  return Array.from({ length: n }, (_, i) => (i * 2654435761) % (max + 1));
}

test("header: 256 little-endian int32, magic/version/count at [0..2], the rest zero (llm.c data_common.py)", () => {
  const h = Buffer.from(llmcHeader("gpt-2", 123456));
  assert.equal(h.length, 1024);
  assert.equal(h.readInt32LE(0), 20240520);
  assert.equal(h.readInt32LE(4), 1);
  assert.equal(h.readInt32LE(8), 123456);
  for (let k = 3; k < 256; k++) assert.equal(h.readInt32LE(4 * k), 0, `header[${k}]`);
  // The exact bytes, so a big-endian or int64 slip cannot pass: 20240520 = 0x0134d888.
  assert.deepEqual([...h.subarray(0, 12)], [0x88, 0xd8, 0x34, 0x01, 1, 0, 0, 0, 0x40, 0xe2, 0x01, 0x00]);
  const l3 = Buffer.from(llmcHeader("llama-3", 7));
  assert.deepEqual([l3.readInt32LE(0), l3.readInt32LE(4), l3.readInt32LE(8)], [20240801, 7, 7]);
  assert.throws(() => llmcHeader("gpt-2", 2 ** 31), /int32/);
});

test("gpt-2 shard: header + uint16 ids, size exactly 1024 + 2n, round-trips; llama-3 shard: uint32", () => {
  const a = ids(1000, 65535);
  const p = join(root, "a.bin");
  writeLlmcShard(p, "gpt-2", Uint16Array.from(a));
  const bytes = readFileSync(p);
  assert.equal(bytes.length, LLMC_HEADER_BYTES + 2 * a.length);
  for (let i = 0; i < a.length; i++) assert.equal(bytes.readUInt16LE(1024 + 2 * i), a[i]);
  const back = readLlmcShard(p);
  assert.equal(back.layout, "gpt-2");
  assert.equal(back.tokens, a.length);
  assert.deepEqual([...back.ids], a);

  const b = ids(500, 200_000);
  const q = join(root, "b.bin");
  writeLlmcShard(q, "llama-3", Uint32Array.from(b));
  const qb = readFileSync(q);
  assert.equal(qb.length, 1024 + 4 * b.length);
  for (let i = 0; i < b.length; i++) assert.equal(qb.readUInt32LE(1024 + 4 * i), b[i]);
  assert.deepEqual([...readLlmcShard(q).ids], b);
  // A uint32 id above 65535 does not fit the gpt-2 layout: refused, nothing written.
  assert.throws(() => writeLlmcShard(join(root, "c.bin"), "gpt-2", Uint32Array.from([1, 70000])), /uint16/);
  assert.throws(() => statSync(join(root, "c.bin")));
});

test("reader checks what llm.c checks: magic, version, count > 0, file size", () => {
  const p = join(root, "ok.bin");
  writeLlmcShard(p, "gpt-2", Uint16Array.from([1, 2, 3]));
  const good = readFileSync(p);
  const set = (offset: number, value: number) => (b: Buffer) => {
    b.writeInt32LE(value, offset);
    return b;
  };
  const bad = (mutate: (b: Buffer) => Buffer, re: RegExp) => {
    const q = join(root, "bad.bin");
    writeFileSync(q, mutate(Buffer.from(good)));
    assert.throws(() => readLlmcShard(q), re);
  };
  bad(set(0, 20240521), /bad magic 20240521/);
  bad(set(4, 2), /version 2, expected 1/);
  bad((b) => b.subarray(0, b.length - 2), /2 bytes short|1028 bytes, but/);
  bad(
    (b) => Buffer.concat([b, Buffer.from([0, 0])]),
    /1032 bytes, but the header's 3 uint16 tokens make 1030/,
  );
  bad(set(8, 0), /counts 0 tokens/);
  assert.throws(() => parseLlmcHeader(new Uint8Array(10)), /shorter than/);
});

test("raw token file -> shards: one file, or <stem>_000000.bin... with --shard-tokens; payload equals the input", () => {
  const a = ids(2500, 60000);
  const raw = join(root, "tokens.bin");
  writeFileSync(raw, encodeTokens(a, "uint16"));
  const one = rawTokensToLlmc({ input: raw, dtype: "uint16", out: join(root, "one.bin") });
  assert.deepEqual(one, [{ path: join(root, "one.bin"), tokens: 2500 }]);
  assert.deepEqual([...readLlmcShard(one[0].path).ids], a);
  const many = rawTokensToLlmc({ input: raw, dtype: "uint16", out: join(root, "sh.bin"), shardTokens: 1000 });
  assert.deepEqual(
    many.map((s) => [s.path, s.tokens]),
    [
      [join(root, "sh_000000.bin"), 1000],
      [join(root, "sh_000001.bin"), 1000],
      [join(root, "sh_000002.bin"), 500],
    ],
  );
  assert.equal(llmcShardPath("x/y", 12), "x/y_000012.bin");
  assert.deepEqual(
    many.flatMap((s) => [...readLlmcShard(s.path).ids]),
    a,
  );
  // uint16 ids exported in the llama-3 layout are widened to uint32.
  const wide = rawTokensToLlmc({ input: raw, dtype: "uint16", out: join(root, "w.bin"), layout: "llama-3" });
  const w = readLlmcShard(wide[0].path);
  assert.equal(w.dtype, "uint32");
  assert.deepEqual([...w.ids], a);
});

const numpy = optionalTool("python3-numpy", pythonModules("numpy"), "apt-get install -y python3-numpy");

// llm.c's own writer and reader, copied from karpathy/llm.c (dev/data/data_common.py write_datafile,
// train_gpt2.py / train_llama3.py _load_data_shard), minus the prints: the independent reference.
const LLMC_PY = `
import sys, numpy as np
HEADERS_INFO = {"gpt-2": {"magic": 20240520, "version": 1, "token_dtype": np.uint16},
                "llama-3": {"magic": 20240801, "version": 7, "token_dtype": np.uint32}}
def write_datafile(filename, toks, model_desc="gpt-2"):
    assert len(toks) < 2**31, "token count too large"
    info = HEADERS_INFO[model_desc]
    header = np.zeros(256, dtype=np.int32)
    header[0] = info["magic"]
    header[1] = info["version"]
    header[2] = len(toks)
    toks_np = np.array(toks, dtype=info["token_dtype"])
    with open(filename, "wb") as f:
        f.write(header.tobytes())
        f.write(toks_np.tobytes())
def _load_data_shard(filename, model_desc):
    info = HEADERS_INFO[model_desc]
    with open(filename, "rb") as f:
        header = np.frombuffer(f.read(256*4), dtype=np.int32)
        assert header[0] == info["magic"], "magic number mismatch in the data .bin file"
        assert header[1] == info["version"], "unsupported version"
        ntok = header[2]
        tokens = np.frombuffer(f.read(), dtype=info["token_dtype"])
    assert len(tokens) == ntok, "number of tokens read does not match header?"
    return tokens
cmd, path, desc = sys.argv[1], sys.argv[2], sys.argv[3]
if cmd == "read":
    print(",".join(str(int(t)) for t in _load_data_shard(path, desc)))
else:
    write_datafile(path, [int(x) for x in sys.stdin.read().split(",")], desc)
`;

function py(args: string[], input?: string): string {
  const r = spawnSync("/usr/bin/python3", ["-c", LLMC_PY, ...args], { encoding: "utf8", input });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim();
}

test("llm.c's own Python writer and reader agree with ours byte for byte (both layouts)", {
  skip: numpy.skip,
}, () => {
  numpy.require();
  for (const [layout, max] of [
    ["gpt-2", 65535],
    ["llama-3", 300_000],
  ] as const) {
    const a = ids(777, max);
    const ours = join(root, `ours-${layout}.bin`);
    writeLlmcShard(ours, layout, layout === "gpt-2" ? Uint16Array.from(a) : Uint32Array.from(a));
    assert.equal(py(["read", ours, layout]), a.join(","), `llm.c reads our ${layout} shard`);
    const theirs = join(root, `theirs-${layout}.bin`);
    py(["write", theirs, layout], a.join(","));
    assert.deepEqual(readFileSync(ours), readFileSync(theirs), `${layout}: identical bytes`);
    assert.deepEqual([...readLlmcShard(theirs).ids], a);
  }
});

test("synthmix mix export/list --json: a mixture and the test sets as llm.c shards", async () => {
  const ws = join(root, "ws");
  const dir = join(ws, "mixtures", "hq-33");
  mkdirSync(dir, { recursive: true });
  const a = ids(3000, 49999);
  writeFileSync(join(dir, "tokens.bin"), encodeTokens(a, "uint16"));
  writeMixtureManifest(dir, {
    id: "hq-33",
    file: "tokens.bin",
    dtype: "uint16",
    vocabSize: 50000,
    eotId: 49999,
    totalTokens: a.length,
    seed: 1,
    tokenizerSha256: "x",
    sources: [{ name: "natural", targetShare: 1, tokens: a.length, documents: 3, epochs: 1 }],
    createdBy: "test",
  });
  mkdirSync(join(ws, "mixtures", "half-built")); // no manifest: not listed
  const out = join(root, "export", "hq-33.bin");
  const { json } = await runCliJson<{ files: { path: string; tokens: number }[]; tokens: number }>(
    "mix",
    "export",
    dir,
    "--format",
    "llmc",
    "--out",
    out,
  );
  assert.deepEqual(json.files, [{ path: out, tokens: 3000 }]);
  assert.equal(json.tokens, 3000);
  const shard = readLlmcShard(out);
  assert.equal(shard.layout, "gpt-2");
  assert.deepEqual([...shard.ids], a);

  const byId = await runCliJson<{ files: { path: string }[] }>(
    "mix",
    "export",
    "hq-33",
    "-w",
    ws,
    "--out",
    join(root, "export", "s.bin"),
    "--shard-tokens",
    "2k",
  );
  assert.deepEqual(
    byId.json.files.map((f) => f.path),
    [join(root, "export", "s_000000.bin"), join(root, "export", "s_000001.bin")],
  );

  const list = await runCliJson<{ id: string; totalTokens: number }[]>("mix", "list", ws);
  assert.deepEqual(
    list.json.map((r) => [r.id, r.totalTokens]),
    [["hq-33", 3000]],
  );

  const test = join(ws, "tokens", "test");
  mkdirSync(test, { recursive: true });
  writeFileSync(join(test, "news.bin"), encodeTokens([5, 6, 7], "uint16"));
  writeTestSetManifest(test, {
    dtype: "uint16",
    vocabSize: 50000,
    eotId: 49999,
    tokenizerSha256: "x",
    domains: [{ name: "news", file: "news.bin", tokens: 3, documents: 1 }],
  });
  const t = await runCliJson<{ kind: string; files: { path: string; domain: string }[] }>(
    "mix",
    "export",
    test,
    "--out",
    join(root, "val"),
  );
  assert.equal(t.json.kind, "testsets");
  assert.deepEqual(t.json.files, [{ path: join(root, "val", "news.bin"), tokens: 3, domain: "news" }]);
  assert.deepEqual([...readLlmcShard(join(root, "val", "news.bin")).ids], [5, 6, 7]);

  await assert.rejects(
    runCliCaptured("mix", "export", join(ws, "mixtures", "half-built"), "--out", out),
    /no valid mixture/,
  );
  await assert.rejects(runCliCaptured("mix", "export", "../x", "-w", ws, "--out", out), /not a valid name/);
});
