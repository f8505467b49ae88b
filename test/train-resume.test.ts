// Fine-tuning interrupted after epoch 1 and resumed gives exactly the weights of the uninterrupted
// run (same seed): data order and dropout masks are derived from (seed, epoch), and the resumable
// checkpoint carries the optimizer moments and step.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/engine/backend';
import { resolveSettings } from '../src/engine/config/settings';
import { CancelledError } from '../src/engine/errors';
import { readSafetensors } from '../src/engine/io/safetensors';
import type { EngineEvent } from '../src/engine/protocol';
import { runPaths } from './helpers/run-folders';
import { finetuneClassifier as finetune } from '../src/engine/train/classifier';
import { pretrainedRun, SMALL_MODEL } from './helpers/pretrained';

let backend = 'wasm';
beforeAll(async () => {
  backend = await initBackend('wasm');
});

const settings = (ema_decay = 0) =>
  resolveSettings('tiny', { model: SMALL_MODEL, finetune: { epochs: 2, batch_size: 16, ema_decay } });

describe('resume', () => {
  it.each([
    ['without', 0],
    ['with', 0.9],
  ])(
    'a cancelled fine-tuning (%s weight averaging) resumed from its last epoch equals the uninterrupted run',
    async (_label, emaDecay) => {
      const { root, run } = await pretrainedRun('bp-resume-', 3, backend);
      const p = runPaths(run);
      const s = settings(emaDecay);

      // Uninterrupted.
      await finetune(
        run,
        s,
        { backend, emit: () => {} },
        {
          stage: 'finetune',
          from: p.pretrain,
          out: path.join(root, 'a'),
          last: path.join(root, 'a-last'),
          settings: s.finetune,
        },
      );

      // Cancelled during epoch 2, then resumed.
      const controller = new AbortController();
      const emit = (e: EngineEvent) => {
        if (e.type === 'epoch' && e.epoch === 1) controller.abort();
      };
      await expect(
        finetune(
          run,
          s,
          { backend, emit, signal: controller.signal },
          {
            stage: 'finetune',
            from: p.pretrain,
            out: path.join(root, 'b'),
            last: path.join(root, 'b-last'),
            settings: s.finetune,
          },
        ),
      ).rejects.toBeInstanceOf(CancelledError);
      expect(JSON.parse(fs.readFileSync(path.join(root, 'b-last', 'train-state.json'), 'utf8')).epochsDone).toBe(1);
      await finetune(
        run,
        s,
        { backend, emit: () => {} },
        {
          stage: 'finetune',
          from: p.pretrain,
          out: path.join(root, 'b'),
          last: path.join(root, 'b-last'),
          resume: true,
          settings: s.finetune,
        },
      );

      // The raw weights, the optimizer state (with the EMA shadow weights) and the kept best model.
      for (const file of ['a-last/model.safetensors', 'a-last/optimizer.safetensors', 'a/model.safetensors']) {
        const a = readSafetensors(path.join(root, file));
        const b = readSafetensors(path.join(root, file.replace(/^a/, 'b')));
        expect([...b.keys()]).toEqual([...a.keys()]);
        for (const [name, t] of a) expect(Array.from(b.get(name)!.data), `${file} ${name}`).toEqual(Array.from(t.data));
        if (file.includes('optimizer')) expect([...a.keys()].some((k) => k.startsWith('ema.'))).toBe(emaDecay > 0);
      }
    },
    60_000,
  );
});
