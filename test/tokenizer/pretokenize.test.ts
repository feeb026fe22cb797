import assert from "node:assert/strict";
import { test } from "node:test";
import { pretokenize, pretokenizeRegex } from "../../src/tokenizer/pretokenize.js";
import { lcg, randomText } from "./helpers.js";

test("the hand-written pre-tokenizer splits exactly like the GPT-2 regex", () => {
  const rnd = lcg(1);
  for (let t = 0; t < 10000; t++) {
    const s = randomText(rnd, 16);
    assert.deepEqual(pretokenize(s), pretokenizeRegex(s), JSON.stringify(s));
  }
});

test("pre-tokenizer examples: contractions, leading spaces, trailing whitespace runs", () => {
  assert.deepEqual(pretokenize("Hello world's  end\n\n x"), [
    "Hello",
    " world",
    "'s",
    " ",
    " end",
    "\n\n",
    " x",
  ]);
  assert.deepEqual(pretokenize("it'LL 12ab ?!x"), ["it", "'", "LL", " 12", "ab", " ?!", "x"]);
  assert.deepEqual(pretokenize("a  "), ["a", "  "]);
});
