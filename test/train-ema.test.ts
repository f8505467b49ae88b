// Weight averaging (EMA): the update rule by hand, swap in / swap back, and that fine-tuning with
// it saves the averaged weights as the best checkpoint while training continues on the raw ones.
// Also: without a validation split (val_fraction 0) the last epoch is kept; FGM leaks nothing; token
// masking (mask_augment) changes what the steps see.
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/engine/backend';
import { resolveSettings } from '../src/engine/config/settings';
import { readSafetensors } from '../src/engine/io/safetensors';
import type { Params } from '../src/engine/model/params';
import { runPaths } from './helpers/run-folders';
import { finetuneClassifier as finetune } from '../src/engine/train/classifier';
import { Ema } from '../src/engine/train/ema';
import { pretrainedRun, SMALL_MODEL } from './helpers/pretrained';

let backend = 'wasm';
beforeAll(async () => {
  backend = await initBackend('wasm');
});

const vals = (p: Params, n: string) => Array.from(p.get(n)!.dataSync());

describe('Ema', () => {
  it('follows shadow <- d*shadow + (1-d)*w with the warm-up decay min(decay, (1+t)/(10+t))', () => {
    const params: Params = new Map([['w', tf.variable(tf.tensor1d([1, 2]))]]);
    const ema = new Ema(0.5, params);
    expect(ema.decayAt(0)).toBeCloseTo(0.1);
    expect(ema.decayAt(1000)).toBe(0.5);
    params.get('w')!.assign(tf.tensor1d([11, 12]));
    ema.update(params, 0); // d = 0.1: 0.1*1 + 0.9*11 = 10
    const d = ema.decayAt(100); // 0.5
    params.get('w')!.assign(tf.tensor1d([0, 0]));
    ema.update(params, 100); // 0.5*10 + 0.5*0 = 5
    const got = Array.from(ema.shadow.get('w')!.dataSync());
    [10 * d, 11 * d].forEach((want, i) => expect(got[i]).toBeCloseTo(want, 5));
  });

  it('withAveraged runs on the averaged weights and puts the raw ones back, even on a throw', async () => {
    const params: Params = new Map([['w', tf.variable(tf.tensor1d([3]))]]);
    const ema = new Ema(0.9, params);
    params.get('w')!.assign(tf.tensor1d([7]));
    const seen = await ema.withAveraged(params, () => vals(params, 'w'));
    expect(seen).toEqual([3]);
    expect(vals(params, 'w')).toEqual([7]);
    await expect(ema.withAveraged(params, () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(vals(params, 'w')).toEqual([7]);
    expect(Array.from(ema.shadow.get('w')!.dataSync())).toEqual([3]);
  });

  it('refuses a decay outside (0, 1)', () => {
    const params: Params = new Map([['w', tf.variable(tf.tensor1d([0]))]]);
    expect(() => new Ema(1, params)).toThrow(/decay/);
    expect(() => new Ema(0, params)).toThrow(/decay/);
  });
});

describe('fine-tuning with weight averaging', () => {
  it('keeps the averaged weights as the best checkpoint and the raw ones in the last', async () => {
    const { root, run } = await pretrainedRun('bp-ema-', 5, backend);
    const s = resolveSettings('tiny', {
      model: SMALL_MODEL,
      finetune: { epochs: 2, batch_size: 16, ema_decay: 0.9, val_fraction: 0 },
    });
    const out = path.join(root, 'ft');
    const r = await finetune(
      run,
      s,
      { backend, emit: () => {} },
      { stage: 'finetune', from: runPaths(run).pretrain, out, last: `${out}-last`, settings: s.finetune },
    );
    expect(r.metrics.best_epoch).toBe(2); // no validation split: the last epoch
    const best = readSafetensors(path.join(out, 'model.safetensors'));
    const raw = readSafetensors(path.join(`${out}-last`, 'model.safetensors'));
    const opt = readSafetensors(path.join(`${out}-last`, 'optimizer.safetensors'));
    const name = 'classifier.weight';
    expect(Array.from(best.get(name)!.data)).toEqual(Array.from(opt.get(`ema.${name}`)!.data));
    expect(Array.from(best.get(name)!.data)).not.toEqual(Array.from(raw.get(name)!.data));
  }, 60_000);
});

describe('FGM', () => {
  it(
    'leaves no more tensors behind than training without it ' + '(each step once kept two embedding matrices)',
    async () => {
      const { root, run } = await pretrainedRun('bp-fgm-', 6, backend);
      const ctx = { backend, emit: () => {} };
      const leftOver = async (fgm_epsilon: number) => {
        const s = resolveSettings('tiny', { model: SMALL_MODEL, finetune: { epochs: 2, batch_size: 16, fgm_epsilon } });
        const before = tf.memory().numTensors;
        const out = path.join(root, `ft-${fgm_epsilon}`);
        await finetune(run, s, ctx, {
          stage: 'finetune',
          from: runPaths(run).pretrain,
          out,
          last: `${out}-last`,
          settings: s.finetune,
        });
        return tf.memory().numTensors - before;
      };
      const plain = await leftOver(0);
      // 2 epochs x 9 steps: the leak left 36 more.
      expect(await leftOver(1)).toBe(plain);
    },
    60_000,
  );
});

describe('token masking (mask_augment)', () => {
  it('masks the training batches: another loss than without it, the same on a rerun, and a log line', async () => {
    const { root, run } = await pretrainedRun('bp-maskaug-', 7, backend);
    const trainLoss = async (mask_augment: number, name: string) => {
      const s = resolveSettings('tiny', { model: SMALL_MODEL, finetune: { epochs: 1, batch_size: 16, mask_augment } });
      const logs: string[] = [];
      const losses: number[] = [];
      const out = path.join(root, name);
      await finetune(
        run,
        s,
        {
          backend,
          emit: (e) => {
            if (e.type === 'log') logs.push(e.message);
            if (e.type === 'epoch') losses.push(e.metrics.train_loss);
          },
        },
        { stage: 'finetune', from: runPaths(run).pretrain, out, last: `${out}-last`, settings: s.finetune },
      );
      return { loss: losses[0], logs };
    };
    const plain = await trainLoss(0, 'plain');
    const masked = await trainLoss(0.5, 'masked');
    const again = await trainLoss(0.5, 'again');
    expect(masked.loss).not.toBe(plain.loss);
    expect(again.loss).toBe(masked.loss);
    expect(masked.logs.some((m) => m.includes('token masking: 0.5 of the tokens'))).toBe(true);
    expect(plain.logs.some((m) => m.includes('token masking'))).toBe(false);
  }, 60_000);
});
