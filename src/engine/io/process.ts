// Whether a process recorded by an earlier command (a run lock, a 'running' stage) still exists.
import * as os from 'node:os';
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
  const state = statFields(pid)?.[0];
  return state === 'Z' || state === 'X';
}

/**
 * The fields of /proc/PID/stat after "PID (COMM)", from the state (field 3) on; undefined where
 * there is no /proc or no such process. COMM may hold spaces and parentheses: the fields follow the
 * last ')'.
 */
function statFields(pid: number): string[] | undefined {
  if (process.platform !== 'linux') return undefined;
  try {
    const stat = readHead(`/proc/${pid}/stat`, 4096).toString('utf8');
    return stat
      .slice(stat.lastIndexOf(')') + 1)
      .trim()
      .split(/\s+/);
  } catch {
    return undefined;
  }
}

/** `pid` when a record names a process of this host by it (a number, and this host's name). */
export function pidOfThisHost(pid: unknown, host: unknown): number | undefined {
  return typeof pid === 'number' && host === os.hostname() ? pid : undefined;
}

/**
 * Whether a record's `pid` and `host` (a 'running' stage in run.json) name a process of this host
 * that no longer exists: the stage died without finishing (killed with -9, out of memory, a crash, a
 * reboot). Records of other hosts, without a pid, or of this very process are not judged.
 */
export function recordedProcessGone(pid: unknown, host: unknown, started?: unknown): boolean {
  const mine = pidOfThisHost(pid, host);
  if (mine === undefined || mine === process.pid) return false;
  return !processAlive(mine) || pidReused(mine, started);
}

/**
 * When process `pid` started, in ms since the epoch, from /proc (Linux): its start in clock ticks
 * since boot (field 22 of /proc/PID/stat; USER_HZ is 100 on Linux's architectures) after the boot,
 * which is now less /proc/uptime. Undefined elsewhere or when it cannot be read.
 */
export function processStartMs(pid: number): number | undefined {
  // Field 22, the start time, is the 20th from the state (field 3) on.
  const ticks = Number(statFields(pid)?.[19]);
  if (!Number.isFinite(ticks)) return undefined;
  try {
    const uptime = Number(readHead('/proc/uptime', 256).toString('utf8').split(/\s+/)[0]);
    return Number.isFinite(uptime) ? Date.now() - uptime * 1000 + ticks * 10 : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Whether the process now holding `pid` started after `started` (an ISO time the recorded process
 * wrote once it ran), so it is another process that got the number again: after a restart of the
 * machine or the container, or once the pids wrapped. A minute of slack covers the rounding and
 * small steps of the clock; a larger step while a stage runs could still make a live stage look
 * gone, so this judges only 'running' stages (what the Runs tree shows, and stages of a run whose
 * lock the caller holds), never run.lock itself, where a live pid is trusted. False where it cannot
 * tell (no /proc, no time).
 */
export function pidReused(pid: number, started: unknown): boolean {
  const recorded = typeof started === 'string' ? Date.parse(started) : NaN;
  const now = processStartMs(pid);
  return Number.isFinite(recorded) && now !== undefined && now > recorded + 60_000;
}

/** What a stage whose process is gone says, in run.json (the engine) and in the Runs tree alike. */
export function goneStageError(pid: unknown, host: unknown): string {
  return (
    `the process (pid ${String(pid)} on ${String(host)}) ended without finishing this stage` +
    ' (killed, out of memory, or crashed); --resume continues it'
  );
}
