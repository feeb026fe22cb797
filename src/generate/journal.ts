import {
  closeSync,
  existsSync,
  fstatSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readdirSync,
  statfsSync,
} from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { loadConfigFile } from "../config/load.js";
import { readDocsTolerant } from "../corpus/docs.js";
import { JsonlAppender, writeJsonAtomic } from "../util/atomic.js";
import { SynthmixError } from "../util/errors.js";
import { parseJsonRecord } from "../util/json.js";
import { readJsonlTolerantLines } from "../util/jsonl.js";
import { type HeldLock, liveHolder, readLockHolder, tryLock } from "../util/lock.js";
import { readExactly } from "../util/readexact.js";
import { diffIdentity, identityHash } from "./options.js";

/**
 * One completed request of `chunks/part-*.jsonl`: the raw answer as the server sent it (acceptance is
 * applied at assembly). Every journal ever written has these fields; old ones (before raw answers were
 * kept) have `text` or `rejected` instead of `raw`.
 */
export const JournalRecSchema = z.object({
  key: z.string(),
  doc: z.string(),
  chunk: z.number().int(),
  chunks: z.number().int(),
  parent: z.string(),
  raw: z.string().optional(),
  text: z.string().optional(),
  rejected: z.string().optional(),
  // An OpenAI-compatible server may send `"finish_reason": null`, which was journaled as is.
  finish_reason: z
    .string()
    .nullish()
    .transform((v) => v ?? undefined),
  usage: z.object({ prompt_tokens: z.number(), completion_tokens: z.number() }).optional(),
  latency_ms: z.number(),
  endpoint: z.string(),
  attempts: z.number().int(),
  /** 0 for the first answer of a key; n for the n-th re-ask after an empty (or truncated) answer. */
  try: z.number().int().optional(),
});
export type JournalRec = z.infer<typeof JournalRecSchema>;

/** Which slice of the sources this process generates; 0/1 is the whole run. */
export interface Shard {
  index: number;
  count: number;
}

export const WHOLE: Shard = { index: 0, count: 1 };

export function shardTag(s: Shard): string {
  return s.count <= 1 ? "" : `s${String(s.index).padStart(4, "0")}of${String(s.count).padStart(4, "0")}`;
}

/** Parse "i/n" (0-based i). */
export function parseShard(v: string): Shard {
  const m = /^(\d+)\/(\d+)$/.exec(v.trim());
  const index = m ? Number(m[1]) : Number.NaN;
  const count = m ? Number(m[2]) : Number.NaN;
  if (!m || count < 1 || index >= count) {
    throw new SynthmixError("CLI", `bad shard "${v}": expected i/n with 0 <= i < n`, {
      hint: "e.g. --shard 0/4 ... --shard 3/4, or leave it to SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT",
    });
  }
  return { index, count };
}

/** Turn a filesystem error into a clean `synthmix:` message naming the path and what to do. */
export function fsError(e: unknown, path: string, action = "write"): SynthmixError {
  if (e instanceof SynthmixError) return e;
  const code = (e as NodeJS.ErrnoException).code ?? "";
  const hints: Record<string, string> = {
    ENOSPC:
      "the disk (or quota) is full: free space and rerun; completed outputs are kept and the rerun resumes",
    EDQUOT:
      "the disk quota is exhausted: free space and rerun; completed outputs are kept and the rerun resumes",
    EROFS: "the workspace is on a read-only filesystem: pass a writable --workspace",
    EACCES: "no permission to write there: fix the permissions or pass another --workspace",
    EPERM: "no permission to write there: fix the permissions or pass another --workspace",
    ENOTDIR:
      "a component of the path is a file, not a folder: move the file away or pass another --workspace",
    EISDIR: "a folder stands where a file is expected: remove it",
  };
  return new SynthmixError("FS", `cannot ${action} ${path}: ${code || (e as Error).message}`, {
    hint: hints[code] ?? "check the workspace path and the filesystem",
    cause: e,
  });
}

/** Test hook: simulate a failing disk (e.g. ENOSPC after some bytes) without a small tmpfs. */
let writeFault: ((path: string, bytes: number) => void) | undefined;
export function setWriteFaultForTests(f: ((path: string, bytes: number) => void) | undefined): void {
  writeFault = f;
}

/**
 * At most one journal fsync per this many milliseconds. Every batch is written (write(2)) when it
 * arrives, which a killed process cannot lose (the page cache keeps it); the fsync only bounds what an OS
 * crash or power loss can take, and the rerun re-asks those requests. An fsync per batch cost 12% of the
 * main thread with two native engines answering (~300 batches/s), and the main thread is what feeds them.
 */
const SYNC_INTERVAL_MS = 100;

/**
 * Appends with group commit: the records pushed within one event-loop turn are written together, and
 * fsynced at most every SYNC_INTERVAL_MS (the last ones by a timer, or at close).
 * A write error is captured and reported through `onError` (it happens in a setImmediate, where a
 * throw would be an uncaught exception after the requests were paid for); later pushes are dropped.
 */
export class BatchedAppender {
  private queue: unknown[] = [];
  private scheduled = false;
  private app?: JsonlAppender;
  private lastSync = Number.NEGATIVE_INFINITY;
  private syncTimer?: NodeJS.Timeout;
  error?: SynthmixError;
  constructor(
    readonly path: string,
    private readonly onError: (e: SynthmixError) => void,
  ) {}
  push(rec: unknown): void {
    if (this.error) return;
    this.queue.push(rec);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }
  flush(): void {
    this.scheduled = false;
    if (this.queue.length === 0 || this.error) return;
    const q = this.queue;
    this.queue = [];
    this.guard(() => {
      this.app ??= new JsonlAppender(this.path);
      writeFault?.(this.path, q.length);
      const now = performance.now();
      const sync = now - this.lastSync >= SYNC_INTERVAL_MS;
      this.app.append(q, sync);
      if (sync) this.lastSync = now;
      else this.syncTimer ??= setTimeout(() => this.syncNow(), SYNC_INTERVAL_MS - (now - this.lastSync));
    });
  }
  private syncNow(): void {
    this.syncTimer = undefined;
    if (this.error) return;
    this.guard(() => {
      this.app?.sync();
      this.lastSync = performance.now();
    });
  }
  /** Runs a file operation; its error becomes this appender's (reported once, later pushes dropped). */
  private guard(op: () => void): void {
    try {
      op();
    } catch (e) {
      if (this.error) return;
      this.error = fsError(e, this.path);
      this.onError(this.error);
    }
  }
  close(): void {
    clearTimeout(this.syncTimer);
    this.syncTimer = undefined;
    this.flush();
    this.guard(() => this.app?.close());
  }
}

export function partFiles(dir: string, tag?: string): string[] {
  if (!existsSync(dir)) return [];
  const re =
    tag === undefined
      ? /^part-.*\.jsonl$/
      : new RegExp(`^part-${tag ? `${tag}-` : "(?!s\\d{4}of)"}.*\\.jsonl$`);
  return readdirSync(dir)
    .filter((f) => re.test(f))
    .sort()
    .map((f) => join(dir, f));
}

/** A fresh part file per run: a torn tail from a killed run stays the last line of its own file. */
let partCounter = 0;
export function newPartName(shard: Shard): string {
  const tag = shardTag(shard);
  return `part-${tag ? `${tag}-` : ""}${Date.now().toString(36).padStart(9, "0")}-${process.pid}-${partCounter++}.jsonl`;
}

/**
 * Truncate a torn tail: bytes after the last newline (a line cut by a kill or a full disk) and a last
 * full line that is not JSON. Returns the number of bytes removed (0 when the file was intact).
 * Only whole trailing damage is repaired; corruption earlier in the file is left for the reader to name.
 */
export function repairJsonlTail(path: string): number {
  if (!existsSync(path)) return 0;
  const fd = openSync(path, "r+");
  try {
    const size = fstatSync(fd).size;
    if (size === 0) return 0;
    // Read the tail only: files can be large, a torn line is at most one record.
    const window = Math.min(size, 4 << 20);
    const start = size - window;
    const buf = Buffer.alloc(window);
    readExactly(fd, buf, start, path);
    const lastNl = buf.lastIndexOf(10);
    // No newline in the window: the whole file is one torn line, or (a >4 MB line) cannot be judged.
    let keep = lastNl < 0 ? (start === 0 ? 0 : size) : start + lastNl + 1;
    // The last complete line must parse too (a garbage line would block every reader).
    if (keep > start && lastNl >= 0) {
      const endIdx = keep - start - 1;
      const prevNl = endIdx > 0 ? buf.lastIndexOf(10, endIdx - 1) : -1;
      if (prevNl >= 0 || start === 0) {
        const line = buf.subarray(prevNl + 1, endIdx).toString("utf8");
        if (line.trim() !== "" && !parses(line)) keep = start + prevNl + 1;
      }
    }
    if (keep === size) return 0;
    ftruncateSync(fd, keep);
    return size - keep;
  } finally {
    closeSync(fd);
  }
}

function parses(line: string): boolean {
  try {
    JSON.parse(line);
    return true;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------
// Resume state

export async function readJournal(dir: string): Promise<Map<string, JournalRec[]>> {
  const out = new Map<string, JournalRec[]>();
  for (const f of partFiles(dir)) {
    for (const { value, line } of await readJsonlTolerantLines(f)) {
      const r = parseJsonRecord(f, line, value, JournalRecSchema, {
        what: "a generation journal record",
        hint: "the journal is damaged: remove the line (its request is sent again on the rerun)",
      });
      const arr = out.get(r.key) ?? [];
      arr.push(r);
      out.set(r.key, arr);
    }
  }
  for (const arr of out.values()) arr.sort((a, b) => (a.try ?? 0) - (b.try ?? 0));
  return out;
}

/** Parents of the documents already written in `dir` (by any shard), with their counts. */
export async function readWritten(dir: string): Promise<Map<string, number>> {
  const written = new Map<string, number>();
  for (const f of partFiles(dir)) {
    for (const { doc } of await readDocsTolerant(f)) {
      const p = doc.meta?.parent;
      if (typeof p === "string" && p) written.set(p, (written.get(p) ?? 0) + 1);
    }
  }
  return written;
}

// ---------------------------------------------------------------------------------------------
// One writer per folder (per shard)

/**
 * `<out>/.generate[-sNNNNofNNNN].lock`: who writes the folder (or one shard of it). The lock is the
 * shared host-aware lock of util/lock.ts (O_EXCL create, heartbeat, stale only when that can be known),
 * so a folder on a cluster filesystem is guarded like a sweep; the shard is the file's name.
 */
export interface LockInfo {
  pid: number;
  host: string;
  /** "i/n" (0/1 for a whole-folder run). */
  shard: string;
  started?: string;
}

function lockName(s: Shard): string {
  return s.count <= 1 ? ".generate.lock" : `.generate-${shardTag(s)}.lock`;
}

/** The shard a lock file's name stands for ("0/1" for `.generate.lock`), undefined for other files. */
function lockShard(file: string): string | undefined {
  if (file === ".generate.lock") return "0/1";
  const m = /^\.generate-s(\d{4})of(\d{4})\.lock$/.exec(file);
  return m ? `${Number(m[1])}/${Number(m[2])}` : undefined;
}

/** The live holder of a lock file, or undefined when it is absent, stale or not a generate lock. */
function liveLock(dir: string, file: string): (LockInfo & { file: string }) | undefined {
  const shard = lockShard(file);
  const path = join(dir, file);
  const holder = shard === undefined ? undefined : readLockHolder(path);
  if (!holder || shard === undefined || liveHolder(path, holder) === undefined) return undefined;
  // host "" is an unreadable lock file (util/lock.ts judges it by its mtime).
  const host = holder.host || "an unknown host";
  return { pid: holder.pid, host, shard, started: holder.since, file: path };
}

/** Live generate locks in `dir` (stale ones are skipped: their holder is gone or stopped its heartbeat). */
export function liveLocks(dir: string): (LockInfo & { file: string })[] {
  if (!existsSync(dir)) return [];
  const out: (LockInfo & { file: string })[] = [];
  for (const f of readdirSync(dir).sort()) {
    const l = liveLock(dir, f);
    if (l) out.push(l);
  }
  return out;
}

function lockedError(dir: string, l: LockInfo): SynthmixError {
  return new SynthmixError(
    "GENERATE_LOCKED",
    `another generate (pid ${l.pid} on ${l.host}, shard ${l.shard}, since ${l.started ?? "an unknown time"}) is writing ${dir}`,
    {
      hint: `wait for it, or stop it (kill ${l.pid}) and rerun; a rerun resumes. A lock left by a crashed process on another host is taken over once its heartbeat is 10 minutes old`,
    },
  );
}

/**
 * Take the folder lock for `shard`: two processes starting together cannot both win, and a stale lock
 * is broken (util/lock.ts). A whole-folder run conflicts with every shard; shards conflict only with the
 * same shard or another shard count.
 */
export function acquireLock(dir: string, shard: Shard): () => void {
  const file = lockName(shard);
  const path = join(dir, file);
  let held: HeldLock | null;
  try {
    held = tryLock(path) ?? tryLock(path); // the first attempt may only break a stale lock
  } catch (e) {
    throw fsError(e, path, "create the lock");
  }
  if (!held) {
    const info = liveLock(dir, file);
    throw lockedError(dir, info ?? { pid: 0, host: "?", shard: `${shard.index}/${shard.count}` });
  }
  const release = () => held.release();
  for (const other of liveLocks(dir)) {
    if (other.file === path) continue;
    const [, n] = other.shard.split("/").map(Number);
    if (shard.count <= 1 || n <= 1 || n !== shard.count) {
      release();
      throw lockedError(dir, other);
    }
  }
  return release;
}

// ---------------------------------------------------------------------------------------------
// Folder manifest: the settings that change outputs

/** `<out>/manifest.json`: the settings a synthetic folder was generated with. */
export const FolderManifestSchema = z.object({
  version: z.literal(1),
  /** stableHash of `identity`. */
  identityHash: z.string(),
  /** Generator, template, corpus, tokenizer and every output-changing setting. */
  identity: z.record(z.string(), z.unknown()),
  created: z.string(),
});
export type FolderManifest = z.infer<typeof FolderManifestSchema>;

/**
 * Pin the folder to `identity` (written on first use). A rerun with other output-changing settings
 * refuses and says which differ, instead of mixing two distributions in one folder.
 */
export function checkManifest(dir: string, identity: Record<string, unknown>): FolderManifest {
  const path = join(dir, "manifest.json");
  const hash = identityHash(identity);
  if (existsSync(path)) {
    const m = loadConfigFile(path, FolderManifestSchema);
    if (m.identityHash !== hash) {
      const diff = diffIdentity(m.identity, identity);
      throw new SynthmixError(
        "SETTINGS_CHANGED",
        `${dir} holds outputs generated with other settings: ${diff.join("; ")}`,
        {
          hint: "rerun with the folder's settings (see its manifest.json), write elsewhere by naming the generator (?name=NEW in --generator), or delete the folder",
        },
      );
    }
    return m;
  }
  const m: FolderManifest = { version: 1, identityHash: hash, identity, created: new Date().toISOString() };
  try {
    writeJsonAtomic(path, m);
  } catch (e) {
    throw fsError(e, path);
  }
  return m;
}

/** Below this much free space a run would tear its files soon: refuse before paying for requests. */
const MIN_FREE_BYTES = 4 << 20;

/** Create `dirs` and check that they can be written and have room, before any request is sent. */
export function checkWritable(dirs: string[]): void {
  for (const d of dirs) {
    try {
      mkdirSync(d, { recursive: true });
    } catch (e) {
      throw fsError(e, d, "create");
    }
  }
  const d = dirs[0];
  let free: number | undefined;
  try {
    const st = statfsSync(d);
    free = Number(st.bavail) * Number(st.bsize);
  } catch {
    // statfs unsupported here: the write errors are still caught and reported cleanly.
  }
  if (free !== undefined && free < MIN_FREE_BYTES) {
    throw fsError(Object.assign(new Error("no space"), { code: "ENOSPC" }), d);
  }
}

// ---------------------------------------------------------------------------------------------
// Per-shard status and readers for downstream stages

/** `<out>/status[-sNNNNofNNNN].json`: the outcome of a shard's last run. */
export const ShardStatusSchema = z.object({
  /** "i/n" (0/1 unsharded). */
  shard: z.string(),
  complete: z.boolean(),
  docsPlanned: z.number(),
  docsWritten: z.number(),
  docsIncomplete: z.number(),
  requestsFailed: z.number(),
  stoppedBy: z.string().optional(),
  /** ISO time the run ended. */
  finished: z.string(),
});
export type ShardStatus = z.infer<typeof ShardStatusSchema>;

export function statusPath(dir: string, shard: Shard): string {
  return join(dir, shard.count <= 1 ? "status.json" : `status-${shardTag(shard)}.json`);
}

export function writeStatus(dir: string, shard: Shard, s: ShardStatus): void {
  writeJsonAtomic(statusPath(dir, shard), s);
}

/** The status of every shard that has finished a run in `dir`, plus running ones from their locks. */
export function readStatuses(dir: string): { statuses: ShardStatus[]; running: string[] } {
  if (!existsSync(dir)) return { statuses: [], running: [] };
  const statuses = readdirSync(dir)
    .filter((f) => /^status(-s\d{4}of\d{4})?\.json$/.test(f))
    .sort()
    .map((f) => loadConfigFile(join(dir, f), ShardStatusSchema));
  return { statuses, running: liveLocks(dir).map((l) => l.shard) };
}

/**
 * Make a synthetic folder readable for downstream stages (mix, sweep, study): refuse while a generate
 * is still writing it, else truncate the torn tails a killed or disk-full run left in its part files.
 * Returns the repaired files (for a log line).
 */
export function prepareSyntheticSource(dir: string): string[] {
  if (!existsSync(dir) || !existsSync(join(dir, "chunks"))) return [];
  const live = liveLocks(dir);
  if (live.length) {
    throw new SynthmixError(
      "GENERATE_RUNNING",
      `${dir} is still being written by generate (pid ${live[0].pid}, shard ${live[0].shard})`,
      { hint: "wait for the generation to finish (synthmix generate status) before building mixtures" },
    );
  }
  const repaired: string[] = [];
  for (const f of partFiles(dir)) {
    try {
      if (repairJsonlTail(f) > 0) repaired.push(f);
    } catch (e) {
      throw fsError(e, f, "repair");
    }
  }
  return repaired;
}
