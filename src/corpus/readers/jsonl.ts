import { BadRecordError } from "../../util/errors.js";
import { readJsonl } from "../../util/jsonl.js";
import type { Doc } from "../types.js";
import { badRecord, type ReadOptions, recordToDoc } from "./common.js";

/** Stream documents from a JSONL (or .jsonl.gz) file, one JSON object per line. */
export async function* readJsonlDocs(path: string, opts: ReadOptions = {}): AsyncGenerator<Doc> {
  const onBad = (err: BadRecordError) => badRecord(opts, err);
  for await (const { value, line } of readJsonl<unknown>(path, onBad)) {
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
      badRecord(opts, new BadRecordError(path, line, "expected a JSON object per line"));
      continue;
    }
    const doc = recordToDoc(value as Record<string, unknown>, path, line, opts);
    if ("error" in doc) {
      badRecord(
        opts,
        new BadRecordError(path, line, doc.error, {
          hint: "choose the text field with --text-field, or pass --skip-bad-records",
        }),
      );
      continue;
    }
    yield doc;
  }
}
