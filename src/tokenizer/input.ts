import { readFileSync } from "node:fs";
import { readDocTexts } from "../corpus/docs.js";

const TEXT_HINT = 'each JSONL line must be an object with a "text" string, or pass --skip-bad-records';

export interface TextSourceStats {
  documents: number;
  chars: number;
  skipped: number;
}

/**
 * Stream document texts from files: JSONL (optionally .gz) records with a "text" field, one document per
 * record; any other file is one document. `stats` is updated as documents are read.
 */
export async function* readTexts(
  paths: string[],
  stats: TextSourceStats = { documents: 0, chars: 0, skipped: 0 },
  opts: { skipBadRecords?: boolean } = {},
): AsyncGenerator<string> {
  const onBad = opts.skipBadRecords
    ? () => {
        stats.skipped++;
      }
    : undefined;
  for (const path of paths) {
    if (/\.jsonl(\.gz)?$/.test(path)) {
      for await (const { text } of readDocTexts(path, { onBad, hint: TEXT_HINT })) {
        stats.documents++;
        stats.chars += text.length;
        yield text;
      }
    } else {
      const text = readFileSync(path, "utf8");
      stats.documents++;
      stats.chars += text.length;
      yield text;
    }
  }
}
