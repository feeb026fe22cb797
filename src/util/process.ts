/**
 * Whether a process with this pid exists (signal 0 checks without signalling). EPERM means it exists
 * but belongs to another user: alive. Used by every pid lock (corpus import, sweep, WSD trunks) to
 * tell a live holder from one a kill left behind.
 */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}
