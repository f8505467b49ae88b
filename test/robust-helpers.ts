// Shared by the robust-*.test.ts files: run the built CLI as a child process, watch its
// --json-events stream, and send it a signal at a chosen event.
import { spawn } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { bp, ROOT } from './helpers/cli';
import { getPreset } from '../src/engine/config/presets';
import { readVocab } from '../src/engine/data/vocab';
import { saveCheckpoint } from '../src/engine/io/checkpoint';
import { makeConfig } from '../src/engine/model/config';
import { disposeParams, initParams } from '../src/engine/model/params';

/** The tiny preset on the wasm backend: small enough for tests on two shared cores. */
export const TINY = ['--preset', 'tiny', '--backend', 'wasm'];

export interface Stopped {
  code: number | null;
  signal: NodeJS.Signals | null;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  events: any[];
  /** Events seen after the signal was sent. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  after: any[];
  stderr: string;
}

/**
 * Start `bert-pruner ARGS` (which should include --json-events) and send `signal` when `when`
 * first holds for an event (given the events before it). Resolves when the process has exited.
 */
export function runUntil(
  args: string[],
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  when: (e: any, before: any[]) => boolean,
  signal: NodeJS.Signals,
  cwd = ROOT,
): Promise<Stopped> {
  const child = spawn(process.execPath, [path.join(ROOT, 'bin', 'bert-pruner.js'), ...args], {
    cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const out: Stopped = { code: null, signal: null, events: [], after: [], stderr: '' };
  let sent = false;
  let buf = '';
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d: string) => (out.stderr += d));
  child.stdout.on('data', (d: string) => {
    buf += d;
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (!line.startsWith('{')) continue;
      const e = JSON.parse(line);
      if (sent) out.after.push(e);
      else if (when(e, out.events)) {
        sent = true;
        child.kill(signal);
      }
      out.events.push(e);
    }
  });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, sig) => {
      out.code = code;
      out.signal = sig;
      if (!sent)
        reject(new Error(`the process ended (exit ${code}) before the event to send ${signal} at:\n${out.stderr}`));
      else resolve(out);
    });
  });
}

export { bp } from './helpers/cli';

/** Every file under the run folder (run.json aside) with its hash: "nothing overwritten" means equal. */
export function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) {
    const f = path.join(e.parentPath, e.name);
    // run.json and history.jsonl record every attempt, failed ones too: they change by design.
    if (e.isFile() && e.name !== 'run.json' && e.name !== 'history.jsonl')
      out[path.relative(dir, f)] = crypto.createHash('sha256').update(fs.readFileSync(f)).digest('hex');
  }
  return out;
}

/** demo-data (trainRows / testRows) into ROOT/data, then corpus-vocab into RUN, through the CLI. */
export async function demoRun(root: string, run: string, trainRows: number, testRows: number): Promise<void> {
  let r = await bp([
    'demo-data',
    '--out',
    path.join(root, 'data'),
    '--train-rows',
    String(trainRows),
    '--test-rows',
    String(testRows),
  ]);
  if (r.code !== 0) throw new Error(`demo-data failed:\n${r.stderr}`);
  r = await bp(['corpus-vocab', '--data', path.join(root, 'data'), '--run', run, ...TINY]);
  if (r.code !== 0) throw new Error(`corpus-vocab failed:\n${r.stderr}`);
}

/**
 * A demo run (120 train / 30 test rows) in ROOT/run and an untrained classifier checkpoint with
 * the tiny preset's shape (2 layers x 2 heads, FFN 64) in ROOT/model, saved by bert-pruner.
 */
export async function demoModel(root: string): Promise<{ run: string; test: string; model: string }> {
  const run = path.join(root, 'run');
  await demoRun(root, run, 120, 30);
  const vocab = readVocab(path.join(run, 'vocab'));
  const cfg = makeConfig(getPreset('tiny').model, vocab.tokens.length, 'classification');
  const params = initParams(cfg, { mlm: false, classifier: true, seed: 5 });
  const model = path.join(root, 'model');
  await saveCheckpoint(model, cfg, params, vocab);
  disposeParams(params);
  return { run, test: path.join(run, 'data', 'test.csv'), model };
}
