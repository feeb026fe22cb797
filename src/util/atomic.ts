/**
 * The one atomic writer. Every file or folder a later stage (or a rerun after a kill) reads is written
 * here: to a temporary name next to the target, fsynced, then renamed over it, then the folder fsynced.
 * A reader sees the old artifact or the complete new one, never a torn one, and a failure removes the
 * temporary file (or folder) instead of leaving it behind.
 *
 *   writeFileAtomic(path, data)        one buffer, a string, or a list of buffers (written in order)
 *   writeJsonAtomic(path, value)       pretty JSON + newline
 *   AtomicFile / withAtomicFile        streaming: write() many times, then commit() or abort()
 *   replaceDir / writeDirAtomic        a whole folder built under a temporary name and swapped in
 *   writeDirAtomicSync                 the same, synchronous (its files are fsynced before the swap)
 *   linkFileAtomic                     publish an existing file under a second name (hard link, else copy)
 *   writeAll                           the short-write loop for a raw fd (append-only logs use it too)
 */
import {
  closeSync,
  copyFileSync,
  existsSync,
  fsyncSync,
  linkSync,
  mkdirSync,
  openSync,
  readdirSync,
  renameSync,
  rmSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { basename, dirname, join } from "node:path";

/** `writeSync` may write fewer bytes than asked (large buffers, pipes): loop until all are written. */
export function writeAll(fd: number, buf: Uint8Array): void {
  let off = 0;
  while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
}

/** The temporary name next to `path`: same folder (so the rename is atomic), unique per process. */
export function tmpPathFor(path: string): string {
  return `${path}.${process.pid}.tmp`;
}

function toBytes(data: string | Uint8Array): Uint8Array {
  return typeof data === "string" ? Buffer.from(data, "utf8") : data;
}

/**
 * A file written in pieces and published at the end. Until `commit()` the data lives in
 * `<path>.<pid>.tmp`; `abort()` (or a failed write or commit) removes it. Not re-entrant across
 * processes writing the same path at once: callers hold the stage's lock for that.
 */
export class AtomicFile {
  readonly tmp: string;
  private fd: number;
  private bytes = 0;

  constructor(readonly path: string) {
    mkdirSync(dirname(path), { recursive: true });
    this.tmp = tmpPathFor(path);
    this.fd = openSync(this.tmp, "w");
  }

  /** Bytes written so far. */
  get size(): number {
    return this.bytes;
  }

  write(data: string | Uint8Array): void {
    if (this.fd < 0) throw new Error(`AtomicFile ${this.path}: write after commit/abort`);
    const buf = toBytes(data);
    try {
      writeAll(this.fd, buf);
    } catch (e) {
      this.abort();
      throw e;
    }
    this.bytes += buf.length;
  }

  /** fsync, close, rename over `path`, fsync the folder. */
  commit(): void {
    if (this.fd < 0) throw new Error(`AtomicFile ${this.path}: commit after commit/abort`);
    try {
      fsyncSync(this.fd);
      closeSync(this.fd);
      this.fd = -1;
      renameSync(this.tmp, this.path);
    } catch (e) {
      this.abort();
      throw e;
    }
    fsyncDir(dirname(this.path));
  }

  /** Drop the temporary file; the target is left as it was. Safe to call more than once. */
  abort(): void {
    if (this.fd >= 0) {
      try {
        closeSync(this.fd);
      } catch {
        // already closed by a failed fsync/close: the unlink below is what matters
      }
      this.fd = -1;
    }
    try {
      unlinkSync(this.tmp);
    } catch {
      // never created, or already renamed away
    }
  }
}

/**
 * Stream into `path` atomically: `fn` writes through the AtomicFile; its return commits the file, a
 * throw (or rejection) aborts it and rethrows.
 */
export async function withAtomicFile<T>(path: string, fn: (file: AtomicFile) => T | Promise<T>): Promise<T> {
  const file = new AtomicFile(path);
  try {
    const out = await fn(file);
    file.commit();
    return out;
  } catch (e) {
    file.abort();
    throw e;
  }
}

/** Write a whole file atomically: a string, one buffer, or a list of buffers written in order. */
export function writeFileAtomic(path: string, data: string | Uint8Array | readonly Uint8Array[]): void {
  const file = new AtomicFile(path);
  try {
    if (typeof data === "string" || data instanceof Uint8Array) file.write(data);
    else for (const b of data) file.write(b);
  } catch (e) {
    file.abort();
    throw e;
  }
  file.commit();
}

export function writeJsonAtomic(path: string, value: unknown): void {
  writeFileAtomic(path, `${JSON.stringify(value, null, 2)}\n`);
}

export function fsyncDir(dir: string): void {
  try {
    const fd = openSync(dir, "r");
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // Some filesystems refuse fsync on directories; the rename is still atomic there.
  }
}

/**
 * Swap the complete folder `tmp` in as `dir`: `dir -> old`, `tmp -> dir`, fsync the parent, remove
 * `old`. Between the two renames no `dir` exists, which readers must treat as absent (never as torn);
 * a reader that wants the previous version in that window can look at `old` (the checkpoint reader
 * does, so it passes a fixed `old` name). The contents of `tmp` must already be fsynced.
 */
export function replaceDir(
  tmp: string,
  dir: string,
  old = join(dirname(dir), `.${basename(dir)}.old-${process.pid}`),
): void {
  const parent = dirname(dir);
  fsyncDir(tmp);
  rmSync(old, { recursive: true, force: true });
  if (existsSync(dir)) renameSync(dir, old);
  renameSync(tmp, dir);
  fsyncDir(parent);
  rmSync(old, { recursive: true, force: true });
}

/**
 * Build a folder under a temporary name (`.<name>.tmp-<pid>` next to it) and swap it in when `fn`
 * returns; a throw removes the temporary folder and leaves `dir` as it was.
 */
export async function writeDirAtomic<T>(dir: string, fn: (tmp: string) => T | Promise<T>): Promise<T> {
  const tmp = join(dirname(dir), `.${basename(dir)}.tmp-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  try {
    const out = await fn(tmp);
    replaceDir(tmp, dir);
    return out;
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}

/** fsync one existing file (e.g. one written by copyFileSync, which does not). */
function fsyncFile(path: string): void {
  const fd = openSync(path, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * writeDirAtomic for synchronous callers: `fn` fills the temporary folder (plain writes and copies are
 * fine: every file directly in it is fsynced here before the swap).
 */
export function writeDirAtomicSync<T>(dir: string, fn: (tmp: string) => T): T {
  const tmp = join(dirname(dir), `.${basename(dir)}.tmp-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  try {
    const out = fn(tmp);
    for (const e of readdirSync(tmp, { withFileTypes: true })) if (e.isFile()) fsyncFile(join(tmp, e.name));
    replaceDir(tmp, dir);
    return out;
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}

/**
 * Make `dst` a (hard-linked, or where links are impossible, copied and fsynced) version of the complete
 * file `src`, swapped in by one rename: readers of `dst` see the old file or the new one.
 */
export function linkFileAtomic(src: string, dst: string): void {
  const tmp = tmpPathFor(dst);
  rmSync(tmp, { force: true });
  try {
    try {
      linkSync(src, tmp);
    } catch {
      copyFileSync(src, tmp);
      fsyncFile(tmp);
    }
    renameSync(tmp, dst);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
  fsyncDir(dirname(dst));
}

/**
 * An append-only JSONL file for long-running stages: each `append` writes whole lines and fsyncs, so a
 * kill loses at most the line being written; the reader of such a file must tolerate (drop) a torn
 * last line on resume.
 */
export class JsonlAppender {
  private fd: number;
  constructor(readonly path: string) {
    mkdirSync(dirname(path), { recursive: true });
    this.fd = openSync(path, "a");
  }
  append(records: unknown[] | unknown, sync = true): void {
    const list = Array.isArray(records) ? records : [records];
    if (list.length === 0) return;
    const text = `${list.map((r) => JSON.stringify(r)).join("\n")}\n`;
    writeAll(this.fd, Buffer.from(text, "utf8"));
    if (sync) fsyncSync(this.fd);
  }
  /** fsync what has been appended so far. */
  sync(): void {
    if (this.fd >= 0) fsyncSync(this.fd);
  }
  close(): void {
    if (this.fd >= 0) {
      fsyncSync(this.fd);
      closeSync(this.fd);
      this.fd = -1;
    }
  }
}
