import {
  closeSync,
  linkSync,
  openSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  utimesSync,
  writeSync,
} from "node:fs";
import { hostname } from "node:os";
import { z } from "zod";
import { processAlive } from "./process.js";

/**
 * An exclusive lock file that is safe on a filesystem shared by several hosts (a sweep folder on NFS
 * or Lustre seen by the login node and the compute nodes).
 *
 * - Taken by an atomic exclusive create (O_CREAT|O_EXCL, `openSync(path, "wx")`, atomic on NFSv3+ and
 *   on cluster filesystems), never by check-then-write.
 * - The file records who holds it: `{"host", "pid", "since", "token"}`. The holder refreshes the file's
 *   mtime every `heartbeatMs` (a timer that does not keep the process alive).
 * - A lock is stale, and may be broken, only when that can be known: on the same host when its pid is
 *   gone (pids mean nothing across hosts); from another host only when its heartbeat is older than
 *   `staleMs` (a crashed node stops touching it). A lock file in the old single-host format (a bare pid)
 *   counts as this host's.
 * - Breaking renames the file aside (only one contender's rename succeeds), checks that the moved file
 *   is still the stale holder's (same token), and links it back otherwise (link fails rather than
 *   overwrite a newer lock).
 */
export interface LockOptions {
  /** How often the holder touches the file (default 15 s). */
  heartbeatMs?: number;
  /** A lock from another host whose mtime is older than this is stale (default 10 min). */
  staleMs?: number;
}

const LockHolderSchema = z.object({
  host: z.string(),
  pid: z.number(),
  since: z.string().optional(),
  token: z.string().optional(),
});
export type LockHolder = z.infer<typeof LockHolderSchema>;

export interface HeldLock {
  /** Remove the lock if it is still ours (idempotent). */
  release(): void;
  /** Refresh the heartbeat now (long synchronous work can call it between steps). */
  touch(): void;
}

const DEFAULT_HEARTBEAT_MS = 15_000;
const DEFAULT_STALE_MS = 10 * 60_000;

/** The holder recorded in a lock file; undefined when the file is gone or unreadable. */
export function readLockHolder(path: string): LockHolder | undefined {
  let text: string;
  try {
    text = readFileSync(path, "utf8").trim();
  } catch {
    return undefined;
  }
  if (/^\d+$/.test(text)) return { host: hostname(), pid: Number(text) }; // the old pid-only format
  try {
    const r = LockHolderSchema.safeParse(JSON.parse(text));
    if (r.success) return r.data;
  } catch {
    // A half-written file (a holder killed between create and write): judged by its mtime below.
  }
  return { host: "", pid: 0 };
}

/** Why the holder still counts (for messages), or undefined when the lock is stale. */
export function liveHolder(path: string, holder: LockHolder, staleMs = DEFAULT_STALE_MS): string | undefined {
  if (holder.host === hostname() && holder.pid > 0) {
    return processAlive(holder.pid) ? `pid ${holder.pid}` : undefined;
  }
  let age: number;
  try {
    age = Date.now() - statSync(path).mtimeMs;
  } catch {
    return undefined;
  }
  if (age > staleMs) return undefined;
  const who = holder.host ? `pid ${holder.pid} on ${holder.host}` : "an unknown holder";
  return `${who}, heartbeat ${Math.round(age / 1000)} s ago`;
}

/**
 * Take the lock at `path`, or return null when someone live holds it (a stale lock is broken on the
 * way, and the caller simply tries again later).
 */
export function tryLock(path: string, opts: LockOptions = {}): HeldLock | null {
  const token = `${hostname()}:${process.pid}:${Date.now()}:${Math.random().toString(36).slice(2)}`;
  const mine = tryCreate(path, token);
  if (mine) return holdLock(path, token, opts.heartbeatMs ?? DEFAULT_HEARTBEAT_MS);
  const holder = readLockHolder(path);
  if (!holder) return null; // released meanwhile: the next attempt creates it
  if (holder.host === hostname() && holder.pid === process.pid) return null; // ours, from another caller
  if (liveHolder(path, holder, opts.staleMs) !== undefined) return null;
  breakStale(path, holder, opts.staleMs);
  return null;
}

function tryCreate(path: string, token: string): boolean {
  let fd: number;
  try {
    fd = openSync(path, "wx");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw e;
  }
  try {
    const rec: LockHolder = { host: hostname(), pid: process.pid, since: new Date().toISOString(), token };
    writeSync(fd, `${JSON.stringify(rec)}\n`);
  } finally {
    closeSync(fd);
  }
  return true;
}

function holdLock(path: string, token: string, heartbeatMs: number): HeldLock {
  const touch = () => {
    try {
      const now = new Date();
      utimesSync(path, now, now);
    } catch {
      // Gone (broken by someone who judged it stale, or released): nothing to refresh.
    }
  };
  const timer = setInterval(touch, heartbeatMs);
  timer.unref();
  let released = false;
  return {
    touch,
    release: () => {
      if (released) return;
      released = true;
      clearInterval(timer);
      if (readLockHolder(path)?.token === token) {
        try {
          unlinkSync(path);
        } catch {
          // Already gone.
        }
      }
    },
  };
}

function breakStale(path: string, stale: LockHolder, staleMs?: number): void {
  const aside = `${path}.stale.${hostname()}.${process.pid}.${Math.random().toString(36).slice(2, 8)}`;
  try {
    renameSync(path, aside);
  } catch {
    return; // someone else broke or released it first
  }
  const moved = readLockHolder(aside);
  const same =
    moved !== undefined &&
    moved.host === stale.host &&
    moved.pid === stale.pid &&
    moved.token === stale.token;
  if (!same && moved && liveHolder(aside, moved, staleMs) !== undefined) {
    try {
      linkSync(aside, path); // a live holder's fresh lock was moved by mistake: put it back
    } catch {
      // A newer lock exists already; theirs stays.
    }
  }
  try {
    unlinkSync(aside);
  } catch {
    // Already gone.
  }
}
