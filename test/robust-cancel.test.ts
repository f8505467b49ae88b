// Ctrl-C in the middle of fine-tuning, through the CLI: the engine stops within one step, exits
// 130, run.json says 'cancelled' and how many epochs are done, the epoch checkpoint loads, and
// --resume finishes with the weights of an uninterrupted run. SIGTERM (timeout, kill) the same,
// with exit 143. The extension's Cancel takes the
// other road (an IPC message to the forked dist/engine.js); it is driven here the same way.
import { fork } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCheckpoint } from '../src/engine/io/checkpoint';
import { disposeParams } from '../src/engine/model/params';
import { ROOT } from './helpers/cli';
import { bp, runUntil, TINY } from './robust-helpers';

let root = '';
let run = '';
const settings = () => path.join(root, 's.json');
const args = (r: string) => ['--run', r, ...TINY, '--config', settings()];
const readRun = (r: string) => JSON.parse(fs.readFileSync(path.join(r, 'run.json'), 'utf8'));

afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
beforeAll(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'bp-robust-cancel-'));
  run = path.join(root, 'run');
  fs.writeFileSync(settings(), JSON.stringify({ pretrain: { epochs: 1 }, finetune: { epochs: 3 } }));
  for (const a of [
    ['demo-data', '--out', path.join(root, 'data'), '--train-rows', '200', '--test-rows', '40'],
    ['corpus-vocab', '--data', path.join(root, 'data'), ...args(run)],
    ['pretrain', ...args(run)],
  ]) {
    const r = await bp(a);
    expect(r.code, r.stderr).toBe(0);
  }
});

describe('Ctrl-C during fine-tuning', () => {
  it('stops within one step with exit 130, status cancelled, and resumes to the uninterrupted result', async () => {
    const s = await runUntil(
      ['finetune', ...args(run), '--json-events'],
      (e, seen) => e.type === 'step' && seen.some((x) => x.type === 'epoch'),
      'SIGINT',
    );
    expect(s.code, s.stderr).toBe(130);
    expect(s.stderr).toMatch(/cancelling after the current step/);
    expect(s.stderr).toMatch(/^error: finetune cancelled in epoch 2$/m);
    expect(s.stderr).not.toMatch(/\n\s+at /); // no stack trace
    expect(s.after.filter((e) => e.type === 'step').length).toBeLessThanOrEqual(1); // within one step
    expect(s.after.some((e) => e.type === 'epoch')).toBe(false);

    const rec = readRun(run).stages.finetune;
    expect(rec.status).toBe('cancelled');
    expect(rec.epochsDone).toBe(1);
    expect(rec.error).toMatch(/cancelled in epoch 2/);
    for (const dir of ['finetune', 'finetune-last']) {
      const ck = loadCheckpoint(path.join(run, dir));
      expect(ck.params.has('classifier.weight'), dir).toBe(true);
      disposeParams(ck.params);
    }

    let r = await bp(['finetune', ...args(run), '--resume']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/resuming finetune after epoch 1/);
    expect(readRun(run).stages.finetune).toMatchObject({ status: 'done', epochsDone: 3 });

    // The same fine-tuning without interruption, into a copy of the run made before it.
    const whole = path.join(root, 'whole');
    fs.mkdirSync(whole);
    for (const f of ['run.json', 'data', 'vocab', 'corpus.txt', 'pretrain'])
      fs.cpSync(path.join(run, f), path.join(whole, f), { recursive: true });
    r = await bp(['finetune', ...args(whole)]);
    expect(r.code, r.stderr).toBe(0);
    for (const dir of ['finetune', 'finetune-last']) {
      const a = fs.readFileSync(path.join(whole, dir, 'model.safetensors'));
      const b = fs.readFileSync(path.join(run, dir, 'model.safetensors'));
      expect(b.equals(a), `${dir}: resumed weights differ from the uninterrupted run`).toBe(true);
    }
  }, 180_000);

  it('SIGTERM (timeout, kill) cancels the same way: exit 143, status cancelled, no stack trace', async () => {
    const term = path.join(root, 'term');
    fs.mkdirSync(term);
    for (const f of ['run.json', 'data', 'vocab', 'corpus.txt', 'pretrain'])
      fs.cpSync(path.join(run, f), path.join(term, f), { recursive: true });
    const s = await runUntil(['finetune', ...args(term), '--json-events'], (e) => e.type === 'step', 'SIGTERM');
    expect(s.code, s.stderr).toBe(143);
    expect(s.stderr).toMatch(/terminated: cancelling after the current step/);
    expect(s.stderr).toMatch(/^error: finetune cancelled in epoch 1$/m);
    expect(s.stderr).not.toMatch(/\n\s+at /);
    expect(s.after.filter((e) => e.type === 'step').length).toBeLessThanOrEqual(1);
    expect(readRun(term).stages.finetune.status).toBe('cancelled');
  }, 120_000);

  it("the extension's Cancel (IPC to the forked engine) also stops within one step and is recorded", async () => {
    const child = fork(path.join(ROOT, 'dist', 'engine.js'), [], { cwd: ROOT, silent: true });
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const replies: any[] = [];
    let cancelledAt = -1;
    const reply = await new Promise<{ type: string; message?: string; user?: boolean }>((resolve, reject) => {
      child.on('error', reject);
      child.on('exit', (code) => reject(new Error(`engine exited (${code}) before replying`)));
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      child.on('message', (m: any) => {
        replies.push(m);
        if (m.type === 'ready') child.send({ type: 'run', id: 7, stage: 'finetune', args: args(run) });
        if (
          m.type === 'event' &&
          m.event.type === 'step' &&
          cancelledAt < 0 &&
          replies.some((r) => r.event?.type === 'epoch')
        ) {
          cancelledAt = replies.length;
          child.send({ type: 'cancel', id: 7 });
        }
        if (m.type === 'error' || m.type === 'done') resolve(m);
      });
    });
    child.removeAllListeners('exit');
    child.disconnect();
    expect(reply).toMatchObject({ type: 'error', user: true });
    expect(reply.message).toMatch(/^finetune cancelled in epoch 2$/);
    expect(replies.slice(cancelledAt).filter((r) => r.event?.type === 'step').length).toBeLessThanOrEqual(1);
    expect(readRun(run).stages.finetune).toMatchObject({ status: 'cancelled', epochsDone: 1 });
  });
});
