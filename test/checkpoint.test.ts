import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/engine/backend';
import { buildVocab } from '../src/engine/data/vocab';
import { loadCheckpoint, saveCheckpoint } from '../src/engine/io/checkpoint';
import { readSafetensorsHeader, writeSafetensors } from '../src/engine/io/safetensors';
import { classify } from '../src/engine/model/bert';
import { tinyBatch, tinyModel } from './helpers/tiny';

beforeAll(async () => {
  await initBackend('wasm');
});

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'bp-ckpt-'));
const vocab30 = () => buildVocab([[...Array(25).keys()].map((i) => i + 100)]);

describe('checkpoints', () => {
  it('save -> load gives identical logits, HF names and PyTorch layout, uneven layers', async () => {
    const { cfg, params } = tinyModel(3, { pruned_heads: { '1': [0, 2] }, intermediate_sizes: [24, 8] });
    const dir = path.join(tmp(), 'ck');
    await saveCheckpoint(dir, cfg, params, vocab30());
    const h = readSafetensorsHeader(path.join(dir, 'model.safetensors'));
    // 2 heads x 4, in = 16
    expect(h.entries['bert.encoder.layer.1.attention.self.query.weight'].shape).toEqual([8, 16]);
    expect(h.entries['bert.encoder.layer.1.intermediate.dense.weight'].shape).toEqual([8, 16]);
    expect(h.entries['classifier.weight'].shape).toEqual([17, 16]);
    expect(h.entries['cls.predictions.decoder.weight']).toBeUndefined();
    const cfgJson = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
    expect(cfgJson.pruned_heads).toEqual({ '1': [0, 2] });
    expect(cfgJson.architectures).toEqual(['BertForSequenceClassification']);
    const ck = loadCheckpoint(dir);
    const inp = tinyBatch(2, 6);
    expect(classify(ck.params, ck.config, inp).arraySync()).toEqual(classify(params, cfg, inp).arraySync());
  });

  it('refuses shapes that do not match config.json, and keeps the previous checkpoint', async () => {
    const { cfg, params } = tinyModel(4);
    const dir = path.join(tmp(), 'ck');
    await saveCheckpoint(dir, cfg, params, vocab30());
    // A weights file whose query weight has the wrong shape.
    const bad = [...params].map(([name, v]) => ({
      name,
      shape: name.endsWith('layer.0.attention.self.query.weight') ? [4, 16] : v.shape,
      data: name.endsWith('layer.0.attention.self.query.weight')
        ? new Float32Array(64)
        : (v.dataSync() as Float32Array),
    }));
    const other = path.join(tmp(), 'bad');
    fs.cpSync(dir, other, { recursive: true });
    writeSafetensors(path.join(other, 'model.safetensors'), bad);
    expect(() => loadCheckpoint(other)).toThrow(
      /layer\.0\.attention\.self\.query\.weight' has shape \[4,16\] but config\.json implies \[16,16\]/,
    );
    fs.rmSync(path.join(other, 'vocab.txt'));
    expect(() => loadCheckpoint(other)).toThrow(/vocab\.txt/);
    // A failed save (unwritable target: a file where the parent dir should be) leaves the old one.
    const blocker = path.join(tmp(), 'file');
    fs.writeFileSync(blocker, 'x');
    await expect(saveCheckpoint(path.join(blocker, 'ck'), cfg, params, vocab30())).rejects.toThrow();
    expect(loadCheckpoint(dir).config.hidden_size).toBe(16);
  });

  it('a missing directory or config is a user error naming it', () => {
    expect(() => loadCheckpoint('/nonexistent/ck')).toThrow(/\/nonexistent\/ck: not a checkpoint directory/);
    const d = tmp();
    expect(() => loadCheckpoint(d)).toThrow(/config\.json: missing/);
  });
});

describe('AdamW', () => {
  it('matches torch.optim.AdamW by hand for two steps', async () => {
    const { AdamW } = await import('../src/engine/train/optim');
    const w = tf.variable(tf.tensor1d([1, -2]));
    const params = new Map([['x.weight', w]]);
    const opt = new AdamW({ lr: 0.1, weightDecay: 0.5 });
    let ref = [1, -2];
    let m = [0, 0];
    let v = [0, 0];
    const grads = [
      [0.5, -1],
      [0.2, 0.3],
    ];
    for (let t = 1; t <= 2; t++) {
      const g = grads[t - 1];
      opt.apply(params, { 'x.weight': tf.tensor1d(g) }, 0.1);
      m = m.map((mi, i) => 0.9 * mi + 0.1 * g[i]);
      v = v.map((vi, i) => 0.999 * vi + 0.001 * g[i] ** 2);
      ref = ref.map(
        (wi, i) => wi * (1 - 0.1 * 0.5) - (0.1 * (m[i] / (1 - 0.9 ** t))) / (Math.sqrt(v[i] / (1 - 0.999 ** t)) + 1e-8),
      );
    }
    const got = Array.from(w.dataSync());
    got.forEach((x, i) => expect(x).toBeCloseTo(ref[i], 5));
  });

  it('learning-rate schedules', async () => {
    const { lrFactor } = await import('../src/engine/train/optim');
    expect(lrFactor(0, 100, 10, 'linear')).toBeCloseTo(0.1);
    expect(lrFactor(9, 100, 10, 'linear')).toBeCloseTo(1);
    expect(lrFactor(55, 100, 10, 'linear')).toBeCloseTo(0.5);
    expect(lrFactor(55, 100, 10, 'cosine')).toBeCloseTo(0.5);
    expect(lrFactor(100, 100, 10, 'linear')).toBe(0);
    expect(lrFactor(50, 100, 0, 'constant')).toBe(1);
  });
});
