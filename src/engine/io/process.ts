// Whether a process recorded by an earlier command (a run lock, a 'running' stage) still exists.

/** Whether process `pid` on this host still exists (EPERM: it does, under another user). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
