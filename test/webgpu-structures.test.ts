// A model whose heads have their own size (attention_head_size: the hidden size was pruned, the
// heads kept theirs) on the webgpu backend: its attention kernel takes the head size from the
// config, not hidden / heads. Logits and every gradient against the cpu backend. Runs on any WebGPU
// adapter, a software one (lavapipe) included; skipped with one line where there is none.
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-cpu';
import { describe, expect, it } from 'vitest';
import { initBackend } from '../src/engine/backend';
import { bceWithLogits, classify, toInputs } from '../src/engine/model/bert';
import { headSize } from '../src/engine/model/config';
import { initParams } from '../src/engine/model/params';
import { webgpuMissing } from './helpers/backends';
import { tinyBatch, tinyConfig } from './helpers/tiny';

const missing = await webgpuMissing('webgpu head-size tests');

/** Hidden 20, 3 heads of 8 (an attention 24 wide), one layer with a pruned head. */
const cfg = tinyConfig({ hidden_size: 20, num_attention_heads: 3, attention_head_size: 8, pruned_heads: { '1': [1] } });

async function on(backend: 'cpu' | 'webgpu' | 'wasm'): Promise<Float32Array[]> {
  await initBackend(backend);
  const batch = tinyBatch(3, 7, 30, 4);
  const y = new Float32Array(3 * 17).map((_, i) => (i % 5 === 0 ? 1 : 0));
  const params = initParams(cfg, { mlm: false, classifier: true, seed: 3 });
  const inp = toInputs(batch.ids32, batch.mask32, 3, 7);
  const logits = classify(params, cfg, inp);
  const vars = [...params.values()];
  const { grads } = tf.variableGrads(() => bceWithLogits(classify(params, cfg, inp), tf.tensor2d(y, [3, 17])), vars);
  const outs = [logits, ...vars.map((v) => grads[v.name])];
  const r: Float32Array[] = [];
  for (const t of outs) r.push((await t.data()) as Float32Array);
  tf.dispose([...outs, ...vars, inp.ids, inp.mask]);
  return r;
}

describe.skipIf(missing !== null)('webgpu: heads of their own size (attention_head_size)', () => {
  it('logits and gradients match the cpu and wasm backends within 1e-4', async () => {
    expect(headSize(cfg)).toBe(8);
    const gpu = await on('webgpu');
    for (const ref of [await on('cpu'), await on('wasm')]) {
      expect(gpu.length).toBe(ref.length);
      gpu.forEach((g, k) => {
        expect(g.length, `output ${k}`).toBe(ref[k].length);
        let worst = 0;
        for (let i = 0; i < g.length; i++)
          worst = Math.max(worst, Math.abs(g[i] - ref[k][i]) / (1 + Math.abs(ref[k][i])));
        expect(worst, `output ${k}`).toBeLessThan(1e-4);
      });
    }
    expect(gpu[0].length).toBe(3 * 17);
  });
});
