// Peak RSS of a first mix build through the GPT-2 tokenizer on 2 worker threads (the path a user runs:
// batches read on demand, at most two in flight per worker, ids returned as views of each batch's
// buffer) does not grow with the source: ~1M vs ~8M tokens, fresh processes, getrusage maxrss (the
// workers are threads, so it covers them). Holding the ids as number[] would grow it ~55 MB over these
// sizes, the in-memory builder ~140 MB; a streaming build grows ~10 MB. Under tsx every worker also
// loads tsx's loader, so the absolute RSS here is ~130 MB above the shipped binary's (BENCHMARKS.md):
// only the growth is checked.
import assert from "node:assert/strict";
import { test } from "node:test";
import { rssGrowth } from "./fixtures/rss.js";

test("mix build through the GPT-2 tokenizer on 2 worker threads: peak RSS flat from 1M to 8M tokens", () => {
  const { small, large, grew } = rssGrowth("gpt2", 1_800_000, 14_400_000);
  assert.ok(large.sourceTokens > 7_000_000, `source of ${large.sourceTokens} tokens`);
  assert.ok(grew < 40, `RSS grew ${grew} MB from ${small.sourceTokens} to ${large.sourceTokens} tokens`);
});
