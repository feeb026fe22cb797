// The mix data path streams: peak memory of a build does not grow with the source. Measured in fresh
// processes (getrusage maxrss) on generated sources of ~3M and ~24M tokens, with the byte-level test
// tokenizer: the mix stage alone (read, cache, plan, write; the GPT-2 worker pipeline is
// stream-gpt2.test.ts). The in-memory builder this replaced held ~11.5 bytes per source token here
// (158 MB at 3M, 261 MB at 12M tokens), so its growth over these sizes would be ~240 MB; a streaming
// build grows ~25 MB (118 -> 143 MB, V8 heap sizing with the longer run).
import assert from "node:assert/strict";
import { test } from "node:test";
import { rssGrowth } from "./fixtures/rss.js";

test("mix build from a 24M-token source (byte tokenizer): bounded peak RSS, flat in the source size", () => {
  const { small, large, grew } = rssGrowth("byte", 3_000_000, 24_000_000);
  assert.ok(large.sourceTokens > 20_000_000, `source of ${large.sourceTokens} tokens`);
  assert.ok(large.maxRssMB < 200, `peak RSS ${large.maxRssMB} MB`);
  assert.ok(grew < 50, `RSS grew ${grew} MB from ${small.sourceTokens} to ${large.sourceTokens} tokens`);
});
