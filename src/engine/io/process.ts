// Whether a process recorded by an earlier command (a run lock, a 'running' stage) still exists.
import { readHead } from './read';

/**
 * Whether process `pid` on this host still exists (EPERM: it does, under another user). A zombie
 * (state Z in /proc/PID/stat on Linux: it has exited and only waits for its parent to reap it, as
 * under a container init that does not reap at once) is gone: it holds nothing and runs nothing.
 */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  return !isZombie(pid);
}

/** Whether /proc/PID/stat says state Z (or X, dead); false where there is no /proc. */
export function isZombie(pid: number): boolean {
  if (process.platform !== 'linux') return false;
  let stat: string;
  try {
    stat = readHead(`/proc/${pid}/stat`, 4096).toString('utf8');
  } catch {
    return false;
  }
  // "PID (COMM) S ...": COMM may hold spaces and parentheses; the state follows the last ')'.
  const state = stat.slice(stat.lastIndexOf(')') + 1).trim()[0];
  return state === 'Z' || state === 'X';
}
