import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects, parquetSchema } from "hyparquet";
import { compressors } from "hyparquet-compressors";
import { BadRecordError } from "../../util/errors.js";
import type { Doc } from "../types.js";
import { badRecord, type ReadOptions, recordToDoc } from "./common.js";

/**
 * Stream documents from a Parquet file (FineWeb/DCLM-style shards), one row group at a time so memory is
 * bounded by the largest row group, not the file. Row numbers in errors and default ids are 1-based.
 */
export async function* readParquetDocs(path: string, opts: ReadOptions = {}): AsyncGenerator<Doc> {
  const textField = opts.textField ?? "text";
  let file: Awaited<ReturnType<typeof asyncBufferFromFile>>;
  let metadata: Awaited<ReturnType<typeof parquetMetadataAsync>>;
  try {
    file = await asyncBufferFromFile(path);
    metadata = await parquetMetadataAsync(file);
  } catch (e) {
    badRecord(
      opts,
      new BadRecordError(path, 0, `not a readable Parquet file (${(e as Error).message})`, { cause: e }),
    );
    return;
  }
  const columns = parquetSchema(metadata).children.map((c) => c.element.name);
  if (!columns.includes(textField)) {
    badRecord(
      opts,
      new BadRecordError(path, 0, `no text column "${textField}"; columns: ${columns.join(", ")}`, {
        hint: "choose the text column with --text-field",
      }),
    );
    return;
  }
  let rowStart = 0;
  for (const group of metadata.row_groups) {
    const rowEnd = rowStart + Number(group.num_rows);
    let rows: Record<string, unknown>[];
    try {
      rows = await parquetReadObjects({ file, metadata, rowStart, rowEnd, compressors });
    } catch (e) {
      badRecord(
        opts,
        new BadRecordError(
          path,
          rowStart + 1,
          `cannot decode rows ${rowStart + 1}-${rowEnd}: ${(e as Error).message}`,
          {
            cause: e,
          },
        ),
      );
      rowStart = rowEnd;
      continue;
    }
    for (let i = 0; i < rows.length; i++) {
      const row = rowStart + i + 1;
      const doc = recordToDoc(rows[i], path, row, opts);
      if ("error" in doc) {
        badRecord(opts, new BadRecordError(path, row, doc.error));
        continue;
      }
      yield doc;
    }
    rowStart = rowEnd;
  }
}
