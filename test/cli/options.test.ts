import assert from "node:assert/strict";
import { test } from "node:test";
import {
  Command,
  collect,
  INTERRUPTED_EXIT_CODE,
  integer,
  nonNegative,
  nonNegativeInt,
  numberOption,
  oneOf,
  positive,
  positiveInt,
  withInterrupt,
} from "../../src/cli/options.js";
import { SynthmixError } from "../../src/util/errors.js";

function badOption(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof SynthmixError, String(e));
    assert.equal(e.code, "BAD_OPTION");
    return e.message;
  }
  return assert.fail("no error");
}

test("number parsers: one error code, the flag and the value in the message", () => {
  assert.equal(positiveInt("threads")("4"), 4);
  assert.equal(nonNegative("--temperature")("0.7"), 0.7);
  assert.equal(nonNegativeInt("top")("0"), 0);
  assert.equal(integer("seed")("-3"), -3);
  assert.equal(numberOption("f", { min: 0, max: 1 })("1"), 1);
  assert.equal(positive("k")("1e-3"), 1e-3);
  assert.match(
    badOption(() => positiveInt("threads")("0")),
    /^--threads: expected a positive integer, got "0"$/,
  );
  assert.match(
    badOption(() => positiveInt("--vocab")("2.5")),
    /^--vocab: expected a positive integer/,
  );
  assert.match(
    badOption(() => nonNegative("x")("-1")),
    /expected a non-negative number, got "-1"/,
  );
  assert.match(
    badOption(() => nonNegativeInt("top")("1.5")),
    /expected a non-negative integer/,
  );
  assert.match(
    badOption(() => positive("k")("0")),
    /expected a positive number/,
  );
  assert.match(
    badOption(() => numberOption("f", { min: 0, max: 1 })("2")),
    /expected a number in \[0, 1\]/,
  );
  assert.match(
    badOption(() => integer("seed")("abc")),
    /expected an integer, got "abc"/,
  );
  // Number("") is 0, Number("Infinity") is not finite: both are rejected.
  badOption(() => nonNegative("x")(""));
  badOption(() => nonNegative("x")("  "));
  badOption(() => nonNegative("x")("Infinity"));
});

test("oneOf and collect", () => {
  const norm = oneOf("normalize", ["NFC", "NFKC", "none"] as const);
  assert.equal(norm("NFKC"), "NFKC");
  assert.match(
    badOption(() => norm("nfc")),
    /^--normalize: expected one of NFC, NFKC, none, got "nfc"$/,
  );
  assert.deepEqual(collect("b", collect("a")), ["a", "b"]);
});

test("a typed command: parsed values, defaults and repeatable options", async () => {
  let seen: { seed: number; source?: string[]; norm: "NFC" | "none" } | undefined;
  const program = new Command()
    .exitOverride()
    .option("--seed <n>", "seed", integer("seed"), 0)
    .option("--source <x>", "repeatable", collect)
    .option("--norm <f>", "form", oneOf("norm", ["NFC", "none"] as const), "NFC")
    .action((o) => {
      // @ts-expect-error a misspelt flag does not compile
      void o.sede;
      seen = o;
    });
  await program.parseAsync(["--seed", "7", "--source", "a", "--source", "b"], { from: "user" });
  assert.deepEqual(seen, { seed: 7, source: ["a", "b"], norm: "NFC" });
});

test("withInterrupt: the first SIGINT aborts the signal, prints the message and sets exit code 130", async () => {
  const before = process.listenerCount("SIGINT");
  const written: string[] = [];
  const write = process.stderr.write;
  process.stderr.write = ((s: string) => {
    written.push(String(s));
    return true;
  }) as typeof process.stderr.write;
  try {
    const out = await withInterrupt(
      async (signal) => {
        assert.equal(signal.aborted, false);
        process.emit("SIGINT");
        assert.equal(signal.aborted, true);
        return "partial";
      },
      { message: "stopping; rerun to resume" },
    );
    assert.equal(out, "partial");
    assert.equal(process.exitCode, INTERRUPTED_EXIT_CODE);
  } finally {
    process.stderr.write = write;
    process.exitCode = 0;
  }
  assert.deepEqual(written, ["\nstopping; rerun to resume\n"]);
  assert.equal(process.listenerCount("SIGINT"), before, "handlers are removed");
  // Not interrupted: no exit code, and a throw propagates.
  await assert.rejects(
    withInterrupt(async () => {
      throw new Error("x");
    }),
    /x/,
  );
  assert.equal(process.exitCode, 0);
});
