// The webgpu backend's register-blocked matmul (backend/webgpu-matmul.ts): every tile variant
// against a float64 host reference (K = 3072 within 1e-5, sizes off every tile), the dense layer
// and self-attention on it against the cpu backend (values and gradients), views at an offset, and
// the per-adapter choice kept in the speeds file. Any WebGPU adapter, a software one (lavapipe) included; skipped with
// one line where there is none.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-cpu';
import { afterEach, describe, expect, it } from 'vitest';
import { initBackend, MATMUL_STORE } from '../src/engine/backend';
import { readSpeeds } from '../src/engine/backend/speeds';
import { webgpuAdapter } from '../src/engine/backend/webgpu';
import { gpuCounters, resetGpuCounters } from '../src/engine/backend/webgpu-kernels';
import {
  blockedMatMul,
  blockedMatMul2d,
  choiceFor,
  DEFAULT_TILE,
  formatMatmulBench,
  KERNEL_VERSION,
  matmulMode,
  mixedTile,
  resetMatmulTuning,
  SPLIT_TILES,
  splitCount,
  splitKMatMul2d,
  tileBytes,
  TILES,
  tuneMatmul,
} from '../src/engine/backend/webgpu-matmul';
import { attentionProduct } from '../src/engine/backend/webgpu-ops';
import { ops } from '../src/engine/ops';
import { webgpuMissing } from './helpers/backends';
import { projections, rand, randomProduct, reference, withCacheDir } from './helpers/webgpu';

const missing = await webgpuMissing('webgpu matmul tests');

/** Our kernel on `tile` against float64: the norm-wise relative error, the worst entry's error over its scale. */
async function errors(tile: string, M: number, K: number, N: number, ta: boolean, tb: boolean, withBias: boolean) {
  const mm = (x: tf.Tensor2D, y: tf.Tensor2D, bias?: tf.Tensor1D) => blockedMatMul2d(x, y, ta, tb, tile, bias);
  const { a, b, bias, got, shape } = await randomProduct(mm, [M, K, N], ta, tb, withBias);
  expect(shape).toEqual([M, N]);
  const { ref, scale } = reference(a, b, M, K, N, ta, tb, bias);
  let num = 0;
  let den = 0;
  let worst = 0;
  for (let i = 0; i < ref.length; i++) {
    num += (got[i] - ref[i]) ** 2;
    den += ref[i] ** 2;
    worst = Math.max(worst, Math.abs(got[i] - ref[i]) / scale[i]);
  }
  return { rel: Math.sqrt(num / den), worst };
}

const LAYOUTS: [boolean, boolean][] = [
  [false, true], // x W^T
  [false, false], // dY W
  [true, false], // dY^T X
  [true, true],
];

describe.skipIf(missing !== null)('our register-blocked webgpu matmul', () => {
  afterEach(() => {
    delete process.env.BERT_PRUNER_WEBGPU_MATMUL;
  });

  it('every tile at K = 3072 (64 x 64 x 3072): within 1e-5 of float64', async () => {
    await initBackend('webgpu');
    resetGpuCounters();
    for (const tile of Object.keys(TILES)) {
      const e = await errors(tile, 64, 3072, 64, false, true, false);
      expect(e.rel, tile).toBeLessThan(1e-5);
      expect(e.worst, tile).toBeLessThan(1e-5);
    }
    // the vec4 tile took its vec4 loads here (sizes and strides multiples of 4), and not at K = 37
    expect(gpuCounters().byProgram['matmul_128x128x8-8x8-v4']).toBe(1);
    await errors('128x128x8-8x8-v4', 64, 37, 64, false, true, false);
    expect(gpuCounters().byProgram['matmul_128x128x8-8x8-v4_scalar']).toBe(1);
    // and the vec4-read (W4) and double-buffered (DB) tiles with theirs
    expect(gpuCounters().byProgram['matmul_128x128x16-8x8-v4w4']).toBe(1);
    expect(gpuCounters().byProgram['matmul_128x128x8-8x8-v4w4db']).toBe(1);
  });

  it("every tile is one the kernel can lay out, in WebGPU's default limits (256 threads, 16 KiB)", () => {
    for (const [name, t] of Object.entries(TILES)) {
      const threads = (t.BM / t.TM) * (t.BN / t.TN);
      expect(t.BM % t.TM === 0 && t.BN % t.TN === 0, name).toBe(true);
      expect(threads, name).toBeLessThanOrEqual(256);
      // every thread loads the same number of scalars (a scalar-load tile's loop has no guard)
      expect(((t.BM * t.BK) % threads) + ((t.BN * t.BK) % threads), name).toBe(0);
      if (t.V4) expect(t.BK % 4, name).toBe(0);
      if (t.W4) expect([t.TM % 4, t.TN % 4], name).toEqual([0, 0]);
      if (t.DB) expect(t.W4, name).toBe(true);
      expect(tileBytes(t), name).toBeLessThanOrEqual(16384);
    }
    expect(tileBytes(TILES['128x128x8-8x8-v4w4db'])).toBe(16384);
    expect(tileBytes(TILES['128x128x8-8x8-v4w4db'], true)).toBe(8192);
  });

  // 76 x 36 x 244: off every tile, but a multiple of 4 (the vec4 loads where a tile has them)
  it('every tile and transpose at sizes off the tiles (77x37x240, 76x36x244, 5x130x3), bias or not', async () => {
    await initBackend('webgpu');
    for (const tile of Object.keys(TILES)) {
      for (const [l, [ta, tb]] of LAYOUTS.entries())
        for (const [M, K, N] of [
          [77, 37, 240],
          [76, 36, 244],
        ]) {
          const e = await errors(tile, M, K, N, ta, tb, l < 2);
          expect(e.rel, `${tile} ${ta} ${tb} ${M}x${K}x${N}`).toBeLessThan(1e-5);
        }
      const e = await errors(tile, 5, 130, 3, false, true, true);
      expect(e.rel, `${tile} 5x130x3`).toBeLessThan(1e-5);
    }
  });

  it('split-K: slices of K summed in order, against float64: each split tile and layout, bias or not', async () => {
    await initBackend('webgpu');
    // S: as many slices as keep 256 workgroups busy with K / S >= 128, a power of two dividing K
    expect(splitCount(1, 4096)).toBe(32);
    expect(splitCount(4, 4096)).toBe(32);
    expect(splitCount(16, 1024)).toBe(8);
    expect(splitCount(1, 1000)).toBe(4);
    expect(splitCount(1, 1001)).toBe(1);
    expect(splitCount(300, 4096)).toBe(1);
    for (const tile of SPLIT_TILES)
      for (const [l, [ta, tb]] of LAYOUTS.entries())
        for (const [M, K, N] of [
          [77, 1000, 40],
          [64, 512, 130],
          [5, 1001, 3],
        ]) {
          const mm = (x: tf.Tensor2D, y: tf.Tensor2D, bias?: tf.Tensor1D) => splitKMatMul2d(x, y, ta, tb, tile, bias);
          resetGpuCounters();
          const { a, b, bias, got, shape } = await randomProduct(mm, [M, K, N], ta, tb, l < 2);
          expect(shape).toEqual([M, N]);
          // K = 1001 is not cut: the tile alone
          expect(!!gpuCounters().byProgram.split_sum, `${tile} ${M}x${K}x${N}`).toBe(K !== 1001);
          const { ref, scale } = reference(a, b, M, K, N, ta, tb, bias);
          got.forEach((g, i) =>
            expect(Math.abs(g - ref[i]), `${tile} ${ta} ${tb} ${M}x${K}x${N} entry ${i}`).toBeLessThan(
              1e-6 * (1 + scale[i]),
            ),
          );
        }
  });

  it('views at an offset: right values; scalar loads where the offset is off a multiple of 4', async () => {
    await initBackend('webgpu');
    const [M, K, N] = [12, 16, 8];
    const tile = '128x128x8-8x8-v4';
    for (const off of [2, 4]) {
      // A's rows start at `off` in a longer buffer, B's at 2 off; strides and sizes allow vec4 loads
      const aData = rand(off + M * K, 60);
      const bData = rand(2 * off + K * N, 61);
      const a = tf.tensor1d(aData);
      const b = tf.tensor1d(bData);
      resetGpuCounters();
      const out = blockedMatMul(
        { t: a, off, sb: 0, si: 0, sr: K, sc: 1 },
        { t: b, off: 2 * off, sb: 0, si: 0, sr: N, sc: 1 },
        { shape: [M, N], sb: 0, si: 0, sr: N, sc: 1 },
        { M, N, K, outer: 1, inner: 1, alpha: 1 },
        tile,
      );
      const got = (await out.data()) as Float32Array;
      const programs = Object.keys(gpuCounters().byProgram);
      const { ref, scale } = reference(aData.subarray(off), bData.subarray(2 * off), M, K, N, false, false);
      got.forEach((g, i) => expect(Math.abs(g - ref[i]), `off ${off} entry ${i}`).toBeLessThan(1e-6 * (1 + scale[i])));
      expect(programs).toEqual([off % 4 === 0 ? `matmul_${tile}` : `matmul_${tile}_scalar`]);
      tf.dispose([a, b, out]);
    }
  });

  it.each([5, 8])(
    "dense and self-attention with projections (head size %i) on each tile: values and gradients as the cpu's",
    async (D) => {
      const B = 2;
      const T = 19;
      const A = 3;
      const H = 16;
      const AD = A * D;
      // head size passed explicitly, as pruned models have it; 8 takes the vec4 loads where a tile has
      // them (the keys' and values' columns of the packed projection start at multiples of 4), 5 not
      const mask = new Float32Array(B * T).map((_, i) => (i % T < [19, 7][Math.floor(i / T)] ? 1 : 0));
      const shapes = [[B * T, H], [AD, H], [AD], [AD, H], [AD], [AD, H], [AD], [77, AD], [77]];
      const data = shapes.map((sh, i) =>
        rand(
          sh.reduce((a, b) => a * b, 1),
          4 + i,
        ).map((x) => x * 0.3),
      );
      const wts = rand(B * T * 77 + B * T * AD, 20);
      const run = () => {
        const xs = shapes.map((sh, i) => tf.tensor(data[i], sh));
        const m = tf.tensor2d(mask, [B, T]);
        const f = (...a: tf.Tensor[]) => {
          const [x, w, b] = [a[0], a[7], a[8]] as tf.Tensor2D[];
          const att = ops().selfAttention(x, ...projections(a.slice(1, 7)), m, { B, T, A, D }, null);
          const y = ops().linear(att, w, b as tf.Tensor as tf.Tensor1D);
          return [att, y];
        };
        const [att, y] = f(...xs);
        const loss = (...a: tf.Tensor[]) => {
          const [a2, y2] = f(...a);
          const flat = tf.concat([y2.reshape([-1]), a2.reshape([-1])]);
          return tf.sum(tf.mul(flat, tf.tensor1d(wts)));
        };
        const g = tf.grads(loss)(xs);
        return [att, y, ...g];
      };
      const read = async (backend: 'cpu' | 'webgpu') => {
        await initBackend(backend);
        const outs = run();
        const r = await Promise.all(outs.map((t) => t.data() as Promise<Float32Array>));
        tf.dispose(outs);
        return r;
      };
      const want = await read('cpu');
      for (const tile of Object.keys(TILES)) {
        process.env.BERT_PRUNER_WEBGPU_MATMUL = `ours:${tile}`;
        expect(choiceFor('NT', 1)).toBe(tile);
        expect(choiceFor('attn', 1)).toBe(tile);
        const got = await read('webgpu');
        got.forEach((g, i) => {
          let worst = 0;
          for (let j = 0; j < g.length; j++)
            worst = Math.max(worst, Math.abs(g[j] - want[i][j]) / (1 + Math.abs(want[i][j])));
          expect(worst, `${tile} output ${i}`).toBeLessThan(1e-4);
        });
      }
    },
  );

  it('BERT_PRUNER_WEBGPU_MATMUL: tfjs, tiled, ours, ours:TILE; anything else is an error naming the choices', () => {
    process.env.BERT_PRUNER_WEBGPU_MATMUL = 'tfjs';
    expect(choiceFor('NN', 1)).toBe('tfjs');
    expect(choiceFor('attn', 1)).toBe('simple');
    process.env.BERT_PRUNER_WEBGPU_MATMUL = 'tiled';
    expect(choiceFor('TN', 1)).toBe('64x64x16-4x4');
    process.env.BERT_PRUNER_WEBGPU_MATMUL = 'ours';
    expect(choiceFor('TN', 1)).toBe('128x128x8-8x8');
    process.env.BERT_PRUNER_WEBGPU_MATMUL = 'ours:9x9';
    expect(() => matmulMode()).toThrow(/BERT_PRUNER_WEBGPU_MATMUL='ours:9x9': one of auto, tfjs, tiled, ours/);
  });

  it("auto: a kept split-K choice runs the dense layer's dW in slices, values and gradients as the cpu's", async () => {
    await initBackend('webgpu');
    const adapter = webgpuAdapter()!;
    const split = `split:${SPLIT_TILES[0]}`;
    const choices = Object.fromEntries(
      ['NT', 'NN', 'TN', 'attn'].flatMap((p) =>
        ['small', 'large'].map((c) => [`${p}:${c}`, p === 'TN' ? split : p === 'attn' ? 'simple' : 'tfjs']),
      ),
    );
    const keep = async (dir: string, kept: Record<string, string>) => {
      const tuning = {
        adapter: adapter.name,
        version: KERNEL_VERSION,
        measured: 'x',
        choices: kept,
        ms: {},
        rejected: {},
      };
      fs.writeFileSync(
        path.join(dir, 'backend-speeds.json'),
        JSON.stringify({
          format: 'bert-pruner-backend-speeds',
          version: 1,
          entries: [],
          matmul: { [adapter.name]: tuning },
        }),
      );
      resetMatmulTuning();
      await tuneMatmul(adapter, attentionProduct, MATMUL_STORE);
    };
    await withCacheDir(async (dir) => {
      // a file someone edited: a split of no tile of ours, a split on the attention: the fallbacks
      await keep(dir, { ...choices, 'TN:small': 'split:9x9', 'attn:small': split });
      expect(choiceFor('TN', 10)).toBe('tfjs');
      expect(choiceFor('attn', 10)).toBe('simple');
      await keep(dir, choices);
      expect(choiceFor('TN', 10)).toBe(split);
      expect(choiceFor('NT', 10)).toBe('tfjs');
      const [M, K, N] = [512, 24, 40]; // dW = dY^T x: [40, 24] from 512 rows, in 4 slices
      const data = [rand(M * K, 70), rand(N * K, 71), rand(N, 72), rand(M * N, 73)];
      const run = () => {
        const [x, w, b] = [tf.tensor2d(data[0], [M, K]), tf.tensor2d(data[1], [N, K]), tf.tensor1d(data[2])];
        const wts = tf.tensor2d(data[3], [M, N]);
        const f = (...a: tf.Tensor[]) =>
          tf.sum(tf.mul(ops().linear(a[0] as tf.Tensor2D, a[1] as tf.Tensor2D, a[2] as tf.Tensor1D), wts));
        return tf.grads(f)([x, w, b]);
      };
      const read = async (backend: 'cpu' | 'webgpu') => {
        await initBackend(backend);
        resetGpuCounters();
        const outs = run();
        const r = await Promise.all(outs.map((t) => t.data() as Promise<Float32Array>));
        tf.dispose(outs);
        return r;
      };
      const got = await read('webgpu');
      expect(gpuCounters().byProgram.split_sum).toBe(1);
      const want = await read('cpu');
      got.forEach((g, i) => {
        let worst = 0;
        for (let j = 0; j < g.length; j++)
          worst = Math.max(worst, Math.abs(g[j] - want[i][j]) / (1 + Math.abs(want[i][j])));
        expect(worst, `gradient ${i}`).toBeLessThan(1e-4);
      });
    });
    resetMatmulTuning();
  });

  it('auto: measured once per adapter, kept in the speeds file beside its entries, then read from it', async () => {
    await initBackend('webgpu');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bp-matmul-'));
    const old = process.env.BERT_PRUNER_CACHE_DIR;
    process.env.BERT_PRUNER_CACHE_DIR = dir;
    try {
      const file = path.join(dir, 'backend-speeds.json');
      const entry = {
        backend: 'wasm',
        cpu: 'x',
        shape: 'L2-H128',
        size: { layers: 2, hidden: 128, attention: 128, ffn: 512 },
        train_tokens_per_s: 1,
        infer_tokens_per_s: 2,
        measured: '2026-01-01T00:00:00Z',
      };
      fs.writeFileSync(file, JSON.stringify({ format: 'bert-pruner-backend-speeds', version: 1, entries: [entry] }));
      const adapter = webgpuAdapter()!;
      resetMatmulTuning();
      const lines: string[] = [];
      const t = await tuneMatmul(adapter, attentionProduct, MATMUL_STORE, (m) => lines.push(m));
      expect(t).not.toBeNull();
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/^webgpu matmul measured on .* in [\d.]+ s: NT:small \S+, .* \(kept in /);
      const keys = ['NT', 'NN', 'TN', 'attn'].flatMap((p) => [`${p}:small`, `${p}:large`]);
      expect(Object.keys(t!.choices).sort()).toEqual(keys.sort());
      const splits = SPLIT_TILES.map((tile) => `split:${tile}`);
      for (const [k, c] of Object.entries(t!.choices)) {
        const dense = !k.startsWith('attn');
        expect(dense ? ['tfjs', ...Object.keys(TILES), ...splits] : ['simple', ...Object.keys(TILES)]).toContain(c);
        // every candidate was checked and timed (split-K on the dense layers' products), the choice is the fastest
        expect(Object.keys(t!.ms[k]).sort()).toEqual(
          [dense ? 'tfjs' : 'simple', ...Object.keys(TILES), ...(dense ? splits : [])].sort(),
        );
        expect(t!.ms[k][c]).toBe(Math.min(...Object.values(t!.ms[k])));
      }
      expect(t!.rejected).toEqual({});
      expect(choiceFor('NT', 10)).toBe(t!.choices['NT:small']);
      const kept = readSpeeds(file);
      expect(kept.entries).toEqual([entry]); // the speed entries stay
      expect(kept.matmul?.[adapter.name]?.choices).toEqual(t!.choices);
      // the next start reads it: no measurement
      resetMatmulTuning();
      const again = await tuneMatmul(adapter, attentionProduct, MATMUL_STORE, (m) => lines.push(m));
      expect(lines).toHaveLength(1);
      expect(again!.measured).toBe(t!.measured);
      // a forced mode measures nothing
      process.env.BERT_PRUNER_WEBGPU_MATMUL = 'tfjs';
      expect(await tuneMatmul(adapter, attentionProduct, MATMUL_STORE)).toBeNull();
    } finally {
      if (old === undefined) delete process.env.BERT_PRUNER_CACHE_DIR;
      else process.env.BERT_PRUNER_CACHE_DIR = old;
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('auto: a tile that does not compile or computes wrongly on the adapter is left out, never chosen', async () => {
    await initBackend('webgpu');
    // a tile whose WGSL the adapter refuses (12.8 threads a column), and one that is 1% off on the
    // attention's products only (by the measurement's attention op)
    const broken = '64x64x16-5x4';
    const off = DEFAULT_TILE;
    TILES[broken] = { BM: 64, BN: 64, BK: 16, TM: 5, TN: 4 };
    const attn: typeof attentionProduct = (c, which, x, y, dims) => {
      const r = attentionProduct(c, which, x, y, dims);
      if (c !== off) return r;
      const wrong = tf.mul(r, 1.01);
      r.dispose();
      return wrong;
    };
    try {
      await withCacheDir(async (dir) => {
        const adapter = webgpuAdapter()!;
        resetMatmulTuning();
        const lines: string[] = [];
        const t = await tuneMatmul(adapter, attn, MATMUL_STORE, (m) => lines.push(m));
        expect(Object.keys(t!.rejected!).sort()).toEqual([off, broken].sort());
        expect(t!.rejected![broken]).toMatch(/^did not compile: .* \(NT:small\)$/);
        expect(t!.rejected![off]).toMatch(/^differs from the 16 x 16 attention kernel by 1\.0e-2 \(attn:small\)$/);
        expect(lines[0]).toMatch(new RegExp(`; left out: ${broken} did not compile: .*; ${off} differs from`));
        // neither is chosen, timed after it was left out, nor timed by bench --matmul
        for (const [k, c] of Object.entries(t!.choices)) {
          expect([broken, off]).not.toContain(c);
          expect(t!.ms[k][broken]).toBeUndefined();
          if (k.startsWith('attn')) expect(t!.ms[k][off]).toBeUndefined();
        }
        expect(t!.ms['NT:small'][off]).toBeGreaterThan(0); // it agreed on the dense products
        const header = formatMatmulBench([], adapter.name).split('\n')[1].split(/\s+/);
        expect(header).not.toContain(broken);
        expect(header).not.toContain(off);
        expect(header).toContain('64x64x16-4x4');
        // where tfjs's matmul runs the fp32 product, precision mixed's f16 kernel takes another tile
        process.env.BERT_PRUNER_WEBGPU_MATMUL = 'tfjs';
        expect(mixedTile('NT', 1)).toBe('64x64x16-4x4');
        // kept and read back as measured
        expect(readSpeeds(path.join(dir, 'backend-speeds.json')).matmul?.[adapter.name]?.rejected).toEqual(t!.rejected);
        // the device lived through the refused compile: a product still runs, no error pending
        const y = tf.matMul(tf.ones([3, 5]), tf.ones([5, 2]));
        expect([...(await y.data())]).toEqual(new Array(6).fill(5));
        y.dispose();
        expect(() => ops().check()).not.toThrow();
      });
    } finally {
      delete TILES[broken];
      resetMatmulTuning();
    }
  });
});
