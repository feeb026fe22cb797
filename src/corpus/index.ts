// The corpus stage: read documents from many formats, clean them, split train/test, write the workspace.
export * from "./clean.js";
export { type CorpusConfig, corpusConfigSchema, toImportOptions } from "./config.js";
export * from "./docs.js";
export { defaultCorpusName, formatCorpusSummary, type ImportOptions, importCorpus } from "./import.js";
export * from "./minhash.js";
export * from "./read.js";
export { BROWN_GROUPS, brownFileToText, readBrownDocs } from "./readers/brown.js";
export { htmlToText } from "./readers/html.js";
export { readJsonlDocs } from "./readers/jsonl.js";
export { readParquetDocs } from "./readers/parquet.js";
export { decodeUtf8Strict, readTextFileDoc } from "./readers/text.js";
export { readWarcDocs } from "./readers/warc.js";
export * from "./split.js";
export * from "./types.js";
export * from "./workspace.js";
