// Run the built CLI (dist/, made by `npm run build`, which `npm test` runs first).
import { spawn, spawnSync } from 'node:child_process';
import * as path from 'node:path';

export const ROOT = path.resolve(__dirname, '..', '..');
const BIN = path.join(ROOT, 'bin', 'bert-pruner.js');

export function cli(args: string[], cwd = ROOT, timeout = 300_000): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd, encoding: 'utf8', timeout });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** A user error: exit 2, one message, no stack trace. */
export function expectUserError(r: { code: number; stderr: string }, pattern: RegExp): void {
  if (r.code !== 2 || !pattern.test(r.stderr) || /\n\s+at /.test(r.stderr)) {
    throw new Error(`expected a user error matching ${pattern}, got exit ${r.code}:\n${r.stderr}`);
  }
}

export interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * `bert-pruner ARGS` (or any command with `file`) as a child process, without blocking the test
 * worker: a spawnSync of a minute starves vitest's own messages on two busy cores.
 */
export function bp(args: string[], cwd = ROOT, file = process.execPath, env?: NodeJS.ProcessEnv): Promise<Ran> {
  const argv = file === process.execPath ? [path.join(ROOT, 'bin', 'bert-pruner.js'), ...args] : args;
  const child = spawn(file, argv, { cwd, env: env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}
