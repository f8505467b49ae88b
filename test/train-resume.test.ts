// Fine-tuning interrupted after epoch 1 and resumed gives exactly the weights of the uninterrupted
// run (same seed): data order and dropout masks are derived from (seed, epoch), and the resumable
// checkpoint carries the optimizer moments and step.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/engine/backend';
import { resolveSettings } from '../src/engine/config/settings';
import { writeDemo } from '../src/engine/data/demo';
import { CancelledError } from '../src/engine/errors';
import { readSafetensors } from '../src/engine/io/safetensors';
import { openRun } from '../src/engine/io/run';
import type { EngineEvent } from '../src/engine/protocol';
import { corpusVocab, runPaths } from '../src/engine/stages/corpus';
import { finetune } from '../src/engine/stages/finetune';
import { pretrain } from '../src/engine/stages/pretrain';

let backend = 'wasm';
beforeAll(async () => {
  backend = await initBackend('wasm');
});

const settings = (ema_decay = 0) =>
  resolveSettings('tiny', { model: { hidden_size: 16, num_attention_heads: 2, intermediate_size: 32, max_len: 32 }, pretrain: { epochs: 1 }, finetune: { epochs: 2, batch_size: 16, ema_decay } });

async function prepared(root: string) {
  writeDemo(path.join(root, 'data'), { trainRows: 160, testRows: 20, seed: 3 });
  const run = path.join(root, 'run');
  openRun(run, {});
  const ctx = { backend, emit: () => {} };
  await corpusVocab({ data: path.join(root, 'data'), run, seed: 1 }, ctx);
  await pretrain(run, settings(), ctx);
  return run;
}

describe('resume', () => {
  it.each([
    ['without', 0],
    ['with', 0.9],
  ])('a cancelled fine-tuning (%s weight averaging) resumed from its last epoch equals the uninterrupted run', async (_label, emaDecay) => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'bp-resume-'));
    const run = await prepared(root);
    const p = runPaths(run);
    const s = settings(emaDecay);

    // Uninterrupted.
    await finetune(run, s, { backend, emit: () => {} }, { stage: 'finetune', from: p.pretrain, out: path.join(root, 'a'), last: path.join(root, 'a-last') });

    // Cancelled during epoch 2, then resumed.
    const controller = new AbortController();
    const emit = (e: EngineEvent) => {
      if (e.type === 'epoch' && e.epoch === 1) controller.abort();
    };
    await expect(
      finetune(run, s, { backend, emit, signal: controller.signal }, { stage: 'finetune', from: p.pretrain, out: path.join(root, 'b'), last: path.join(root, 'b-last') }),
    ).rejects.toBeInstanceOf(CancelledError);
    expect(JSON.parse(fs.readFileSync(path.join(root, 'b-last', 'train-state.json'), 'utf8')).epochsDone).toBe(1);
    await finetune(run, s, { backend, emit: () => {} }, { stage: 'finetune', from: p.pretrain, out: path.join(root, 'b'), last: path.join(root, 'b-last'), resume: true });

    // The raw weights, the optimizer state (with the EMA shadow weights) and the kept best model.
    for (const file of ['a-last/model.safetensors', 'a-last/optimizer.safetensors', 'a/model.safetensors']) {
      const a = readSafetensors(path.join(root, file));
      const b = readSafetensors(path.join(root, file.replace(/^a/, 'b')));
      expect([...b.keys()]).toEqual([...a.keys()]);
      for (const [name, t] of a) expect(Array.from(b.get(name)!.data), `${file} ${name}`).toEqual(Array.from(t.data));
      if (file.includes('optimizer')) expect([...a.keys()].some((k) => k.startsWith('ema.'))).toBe(emaDecay > 0);
    }
  }, 60_000);
});
