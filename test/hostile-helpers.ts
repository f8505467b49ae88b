// Shared by test/hostile-*.test.ts: run the built CLI as a child process and measure the harm a
// hostile input does, not the words it prints.
//   - time: the child is killed after LIMIT_S seconds (and the test sees `killed: 'time'`);
//   - memory: its peak resident set, VmHWM in /proc/PID/status (a high-water mark the kernel keeps,
//     so a poll every 20 ms misses nothing but the last moments), and it is killed as soon as its
//     resident set passes LIMIT_MB (`killed: 'memory'`), so a broken build cannot take the shared
//     machine's memory while the test fails;
//   - files: a hash of every regular file under a folder, before and after (special files, a
//     /dev/zero link or a FIFO, are recorded by kind and never read);
//   - planted code: a file a planted module writes when it runs (plantedRan).
// BERT_PRUNER_TEST_BIN runs another build (e.g. the one at bd78be4, to see the tests fail there).
import { spawn } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect } from 'vitest';
import { ROOT } from './helpers/cli';

export const LIMIT_S = 10;
export const LIMIT_MB = 500;
const BIN = process.env.BERT_PRUNER_TEST_BIN ?? path.join(ROOT, 'bin', 'bert-pruner.js');

export interface Watched {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  seconds: number;
  peakMB: number;
  killed?: 'time' | 'memory';
}

function procStatus(pid: number): { hwm: number; rss: number } | null {
  try {
    const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? 0);
    return { hwm: kb('VmHWM'), rss: kb('VmRSS') };
  } catch {
    return null;
  }
}

/** `bert-pruner ARGS` in `cwd`, watched for time and memory. */
export function runWatched(args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env): Promise<Watched> {
  return watchNode([BIN, ...args], cwd, env);
}

/** `node ARGV` in `cwd`, watched for time and memory. */
export function watchNode(argv: string[], cwd: string, env: NodeJS.ProcessEnv = process.env): Promise<Watched> {
  const t0 = performance.now();
  const child = spawn(process.execPath, argv, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const out: Watched = { code: null, signal: null, stdout: '', stderr: '', seconds: 0, peakMB: 0 };
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out.stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (out.stderr += d));
  const kill = (why: 'time' | 'memory') => {
    if (!out.killed) out.killed = why;
    child.kill('SIGKILL');
  };
  const poll = setInterval(() => {
    const s = child.pid ? procStatus(child.pid) : null;
    if (!s) return;
    out.peakMB = Math.max(out.peakMB, s.hwm / 1024);
    if (s.rss / 1024 > LIMIT_MB) kill('memory');
  }, 20);
  const timer = setTimeout(() => kill('time'), LIMIT_S * 1000);
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', () => {
      // the last look, while the zombie's status still answers (until it is reaped)
      const s = child.pid ? procStatus(child.pid) : null;
      if (s) out.peakMB = Math.max(out.peakMB, s.hwm / 1024);
    });
    child.on('close', (code, signal) => {
      clearInterval(poll);
      clearTimeout(timer);
      out.code = code;
      out.signal = signal;
      out.seconds = (performance.now() - t0) / 1000;
      resolve(out);
    });
  });
}

/** The harm bound every hostile case asserts: done within LIMIT_S, peak RSS under LIMIT_MB. */
export function expectContained(r: Watched): void {
  const sig = r.signal ? ` (${r.signal})` : '';
  const what = `exit ${r.code}${sig}, ${r.seconds.toFixed(1)} s, peak ${r.peakMB.toFixed(0)} MB`;
  if (process.env.BERT_PRUNER_HOSTILE_REPORT) console.log(`hostile: ${what}`); // the figures, on request
  expect(r.killed, `killed for ${r.killed}: ${what}\n${r.stderr.slice(-2000)}`).toBeUndefined();
  expect(r.seconds, what).toBeLessThan(LIMIT_S);
  expect(r.peakMB, what).toBeLessThan(LIMIT_MB);
}

/** Classes 2-6: a user error: exit 2, one line on stderr, no stack trace. */
export function expectOneLineRefusal(r: Watched, pattern?: RegExp): void {
  expectContained(r);
  // Progress lines (`backend: wasm`) may come first; the error is one `error:` line and the last.
  const lines = r.stderr
    .trim()
    .split('\n')
    .filter((l) => l.trim() !== '');
  const what = `exit ${r.code}:\n${r.stderr.slice(-3000)}`;
  expect(r.code, what).toBe(2);
  expect(lines.filter((l) => /^error:/.test(l)).length, what).toBe(1);
  expect(lines[lines.length - 1], what).toMatch(/^error:/);
  expect(r.stderr, what).not.toMatch(/\n\s+at /);
  if (pattern) expect(r.stderr, what).toMatch(pattern);
}

/** A hash of every entry under `dir` (links not followed; special files by kind, never read). */
export function hashTree(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) {
    const f = path.join(e.parentPath, e.name);
    const rel = path.relative(dir, f);
    if (e.isSymbolicLink()) out[rel] = `link ${fs.readlinkSync(f)}`;
    else if (e.isFile()) out[rel] = crypto.createHash('sha256').update(fs.readFileSync(f)).digest('hex');
    else if (e.isDirectory()) out[rel] = 'dir';
    else out[rel] = 'special';
  }
  return out;
}

/** A Python module that, when imported, records that it ran (and then looks like the real one). */
export function plantPython(dir: string, module: string, marker: string): void {
  fs.writeFileSync(
    path.join(dir, `${module}.py`),
    `open(${JSON.stringify(marker)}, 'w').write('planted ${module} ran')\n__version__ = '0.0-planted'\n`,
  );
}

export const plantedRan = (marker: string): boolean => fs.existsSync(marker);
