import assert from "node:assert/strict";
import { test } from "node:test";
import { openblasCoretype, openblasEnv, openblasNote } from "../../bench/peers/env.js";

// The benches' ratios are only meaningful against the strongest peer: an inherited OPENBLAS_CORETYPE
// (this machine's environment sets Haswell, 2.4x slower SGEMM than SkylakeX on Zen 5) must not weaken it.
test("an inherited OPENBLAS_CORETYPE does not choose the peer's kernels, and the note says so", () => {
  const env = { OPENBLAS_CORETYPE: "Haswell" };
  const chosen = openblasCoretype(env);
  assert.notEqual(chosen, "Haswell");
  assert.ok(["SkylakeX", undefined].includes(chosen), String(chosen));
  assert.match(openblasNote(env), /inherited OPENBLAS_CORETYPE=Haswell is overridden/);
  // Inheriting exactly the chosen value (or nothing, where OpenBLAS detects) is no override.
  assert.equal(
    openblasNote(chosen === undefined ? {} : { OPENBLAS_CORETYPE: chosen }).includes("overridden"),
    false,
  );
});

test("SYNTHMIX_PEER_OPENBLAS_CORETYPE chooses explicitly, and reaches the peer's environment", () => {
  const env = { OPENBLAS_CORETYPE: "SkylakeX", SYNTHMIX_PEER_OPENBLAS_CORETYPE: "Haswell" };
  assert.equal(openblasCoretype(env), "Haswell");
  assert.match(openblasNote(env), /overridden/);
  const saved = { ...process.env };
  try {
    process.env.SYNTHMIX_PEER_OPENBLAS_CORETYPE = "Zen";
    process.env.OPENBLAS_CORETYPE = "Haswell";
    const e = openblasEnv(2);
    assert.equal(e.OPENBLAS_CORETYPE, "Zen");
    assert.equal(e.OPENBLAS_NUM_THREADS, "2");
  } finally {
    for (const k of ["SYNTHMIX_PEER_OPENBLAS_CORETYPE", "OPENBLAS_CORETYPE"]) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
  }
});
