// kill -9 in the middle of pretraining, through the CLI as a user would meet it: the last epoch
// checkpoint survives and loads, run.json is valid and says how far the stage got, and --resume
// finishes with exactly the weights of an uninterrupted run (same seed). The kill is also placed
// in the worst spot there is: between the two renames that replace the epoch checkpoint.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCheckpoint } from '../src/engine/io/checkpoint';
import { disposeParams } from '../src/engine/model/params';
import { bp, runUntil, TINY } from './robust-helpers';

let root = '';
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
beforeAll(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'bp-robust-kill-'));
  fs.writeFileSync(path.join(root, 's.json'), JSON.stringify({ pretrain: { epochs: 3 } }));
  const r = await bp(['demo-data', '--out', path.join(root, 'data'), '--train-rows', '200', '--test-rows', '40']);
  expect(r.code, r.stderr).toBe(0);
});

const args = (run: string) => ['--run', run, ...TINY, '--config', path.join(root, 's.json')];
const readRun = (run: string) => JSON.parse(fs.readFileSync(path.join(run, 'run.json'), 'utf8'));

describe('kill -9 during pretraining', () => {
  it('leaves a loadable epoch checkpoint and a valid run.json; --resume equals the uninterrupted run', async () => {
    const killed = path.join(root, 'killed');
    const whole = path.join(root, 'whole');
    for (const run of [killed, whole]) {
      const r = await bp(['corpus-vocab', '--data', path.join(root, 'data'), ...args(run)]);
      expect(r.code, r.stderr).toBe(0);
    }

    // Killed in epoch 2 of 3: after the epoch-1 event, at the next step.
    const k = await runUntil(
      ['pretrain', ...args(killed), '--json-events'],
      (e, seen) => e.type === 'step' && seen.some((x) => x.type === 'epoch'),
      'SIGKILL',
    );
    expect(k.signal).toBe('SIGKILL');
    const lastStep = k.events.filter((e) => e.type === 'step').pop();
    expect(lastStep.epoch).toBe(2);

    // What is on disk: run.json parses and says corpus-vocab finished, pretrain got 1 epoch done.
    const m = readRun(killed);
    expect(m.stages['corpus-vocab'].status).toBe('done');
    expect(m.stages.pretrain.status).toBe('running');
    expect(m.stages.pretrain.epochsDone).toBe(1);
    const last = path.join(killed, 'pretrain-last');
    expect(JSON.parse(fs.readFileSync(path.join(last, 'train-state.json'), 'utf8')).epochsDone).toBe(1);
    const ck = loadCheckpoint(last);
    expect(ck.params.size).toBeGreaterThan(10);
    disposeParams(ck.params);
    expect(fs.existsSync(path.join(killed, 'pretrain'))).toBe(false); // the final one was never written
    // No half-written files anywhere (temp files are only ever renamed into place).
    expect(fs.readdirSync(last).sort()).toEqual([
      '.bert-pruner',
      'config.json',
      'model.safetensors',
      'optimizer.safetensors',
      'special_tokens_map.json',
      'token_counts.json',
      'tokenizer_config.json',
      'train-state.json',
      'vocab.txt',
    ]);

    // The worst moment: killed between "move the old checkpoint aside" and "move the new one in".
    fs.renameSync(last, `${last}.old-0badc0de`);
    // kill -9 left the run's lock behind: the next command takes it over (its process is gone).
    expect(fs.existsSync(path.join(killed, 'run.lock'))).toBe(true);

    let r = await bp(['pretrain', ...args(killed), '--resume']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/resuming pretraining after epoch 1/);
    expect(r.stderr).toMatch(/run\.lock: taking over a stale lock \(pid \d+ on .*'pretrain'/);
    expect(fs.existsSync(path.join(killed, 'run.lock'))).toBe(false);
    const done = readRun(killed).stages.pretrain;
    expect(done.status).toBe('done');
    expect(done.epochsDone).toBe(3);

    r = await bp(['pretrain', ...args(whole)]);
    expect(r.code, r.stderr).toBe(0);
    const a = fs.readFileSync(path.join(whole, 'pretrain', 'model.safetensors'));
    const b = fs.readFileSync(path.join(killed, 'pretrain', 'model.safetensors'));
    expect(b.equals(a), 'resumed weights differ from the uninterrupted run').toBe(true);
  }, 180_000);
});
