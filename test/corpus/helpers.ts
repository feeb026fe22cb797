import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Doc } from "../../src/corpus/types.js";

export function tmp(prefix = "synthmix-corpus-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export async function collect(it: AsyncIterable<Doc>): Promise<Doc[]> {
  const out: Doc[] = [];
  for await (const d of it) out.push(d);
  return out;
}

export async function* fromArray(docs: Doc[]): AsyncGenerator<Doc> {
  yield* docs;
}
