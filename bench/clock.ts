/** This process's CPU milliseconds (user + system, all its threads). */
export const cpuMs = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

/**
 * The kernel benches' clock in milliseconds: CPU time on 1 thread (it holds up on a loaded machine), the
 * wall clock on more (CPU time would also count the thread pool's spinning).
 */
export const benchClock = (threads: number): (() => number) =>
  threads === 1 ? cpuMs : () => performance.now();
