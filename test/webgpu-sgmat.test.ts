// The matmul on subgroup matrices (backend/webgpu-sgmat.ts) for precision mixed. No adapter here
// offers them (lavapipe has no cooperative matrices), so its kernel runs in the emulated dialect:
// the same tiling, offsets, strides, bounds and epilogue, with the builtins written in plain WGSL
// after their documented semantics. Checked: tiles of three configurations against a float64
// product of the f16-rounded inputs, bias, off-tile sizes and every transpose; f32 sums; an
// overflow's NaN; the attention's strided batched products; a mixed training step on it against
// the f16 register-blocked kernel and the cpu backend's fp32, recorded and replayed; the
// measurement (tuneMixed) choosing, keeping and reading back its choices, an unfinished one not
// tried again, the off switch; and Dawn's own spelling refused by an adapter without the feature:
// every candidate left out with its compile error, the stage on the f16 kernel.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterEach, describe, expect, it } from 'vitest';
import { initBackend, MATMUL_STORE } from '../src/engine/backend';
import { readSpeeds } from '../src/engine/backend/speeds';
import {
  precisionFeatures,
  subgroupMatrixOffer,
  webgpuAdapter,
  type WebGpuAdapter,
} from '../src/engine/backend/webgpu';
import { gpuCounters, resetGpuCounters } from '../src/engine/backend/webgpu-kernels';
import {
  DEFAULT_TILE,
  emulateSubgroupMatrix,
  forceMixedChoice,
  KERNEL_VERSION,
  matMul2dOn,
  matmulSummary,
  type MatmulTuning,
  mixedChoice,
  relDiff,
  resetMatmulTuning,
  subgroupMatrixCandidates,
  tuneMatmul,
  tuneMixed,
} from '../src/engine/backend/webgpu-matmul';
import { attentionProduct } from '../src/engine/backend/webgpu-ops';
import { deviceCounters, resetDeviceCounters } from '../src/engine/backend/webgpu-record';
import { parseSgName, SG_FORMS, sgFits, sgName, sgWgsl, type SgConfig } from '../src/engine/backend/webgpu-sgmat';
import { Rng } from '../src/engine/data/rng';
import { queueTrainStep, stepRecording, StepSpec } from '../src/engine/train/loop';
import { AdamW } from '../src/engine/train/optim';
import { tinyModel } from './helpers/tiny';
import { mixedWebgpuMissing } from './helpers/backends';
import {
  classifierStepLoss,
  f16,
  f16EdgeCases,
  hostBatch,
  rand,
  randomProduct,
  reference,
  relErr,
  snapshot,
  type HostBatch,
  withCacheDir,
} from './helpers/webgpu';

describe('subgroup matrices: what is asked of Dawn and what it offers', () => {
  it('mixed asks for subgroups beside the subgroup-matrix feature (and for neither without subgroups)', () => {
    const all = new Set(['shader-f16', 'subgroups', 'chromium-experimental-subgroup-matrix']);
    expect(precisionFeatures('mixed', all)).toEqual([
      'shader-f16',
      'subgroups',
      'chromium-experimental-subgroup-matrix',
    ]);
    expect(precisionFeatures('mixed', new Set(['shader-f16', 'chromium-experimental-subgroup-matrix']))).toEqual([
      'shader-f16',
    ]);
    expect(precisionFeatures('fp32', all)).toEqual([]);
  });

  it("the adapter's f16 -> f32 configurations, and its subgroup size only where fixed", () => {
    const configs = [
      { componentType: 'f16', resultComponentType: 'f32', M: 16, N: 16, K: 16 },
      { componentType: 'f16', resultComponentType: 'f16', M: 16, N: 16, K: 16 },
      { componentType: 'i8', resultComponentType: 'i32', M: 16, N: 16, K: 32 },
      { componentType: 'f16', resultComponentType: 'f32', M: 16, N: 8, K: 16 },
    ];
    const info = { vendor: 'nvidia', device: '', description: '', subgroupMatrixConfigs: configs };
    expect(subgroupMatrixOffer({ ...info, subgroupMinSize: 32, subgroupMaxSize: 32 })).toEqual({
      sgConfigs: [
        { M: 16, N: 16, K: 16 },
        { M: 16, N: 8, K: 16 },
      ],
      subgroupSize: 32,
    });
    expect(subgroupMatrixOffer({ ...info, subgroupMinSize: 16, subgroupMaxSize: 64 }).subgroupSize).toBe(0);
    expect(subgroupMatrixOffer({ vendor: '', device: '', description: '' })).toEqual({
      sgConfigs: [],
      subgroupSize: 0,
    });
  });

  it("the device spelling: Dawn's builtins, its uniformity diagnostic off, a workgroup of whole subgroups", () => {
    const o = {
      cfg: { M: 16, N: 16, K: 16 },
      tile: { WM: 2, WN: 2 },
      subgroupSize: 32,
      kLoop: (math: string) => math,
      bases: '',
      head: '',
      bindings: '',
      bias: false,
    };
    const t = sgWgsl({ ...o, dialect: { kind: 'device', form: SG_FORMS[0] } });
    expect(t).toContain('enable chromium_experimental_subgroup_matrix;');
    expect(t).toContain('diagnostic(off, chromium.subgroup_matrix_uniformity);');
    expect(t).toContain('for (var kk = 0u; kk < 32u; kk += 16u) {');
    expect(t).toContain('a1 = subgroupMatrixLoad<SgL, col_major>(&As, kk * 64u + arow + 16u, 64u);');
    expect(t).toContain('c1_0 = subgroupMatrixMultiplyAccumulate(a1, b0, c1_0);');
    expect(t).toContain('subgroupMatrixStore<row_major>(&Cs, sg * 256u, c1_1, 16u);');
    expect(t).toContain('@workgroup_size(128)');
    expect(t).toContain('@builtin(subgroup_id) sgid: u32');
    const b = sgWgsl({ ...o, dialect: { kind: 'device', form: SG_FORMS[2] } });
    expect(b).toContain('b1 = subgroupMatrixLoad<SgR>(&Bs, kk * 64u + bcol + 16u, false, 64u);');
    expect(b).toContain('subgroupMatrixStore(&Cs, sg * 256u, c0_1, false, 16u);');
    expect(sgWgsl({ ...o, dialect: { kind: 'device', form: SG_FORMS[1] } })).toContain('let sg = tid / 32u;');
    const e = sgWgsl({ ...o, dialect: { kind: 'emulated' } });
    expect(e).not.toContain('subgroup_matrix');
    // double-buffered: k steps of K0, two buffers, fragments read from this step's (at ra, rb)
    const db = sgWgsl({
      ...o,
      tile: { WM: 2, WN: 2, V4: true, DB: true },
      dialect: { kind: 'device', form: SG_FORMS[0] },
    });
    expect(db).toContain('for (var kk = 0u; kk < 16u; kk += 16u) {');
    expect(db).toContain('a1 = subgroupMatrixLoad<SgL, col_major>(&As, ra + kk * 64u + arow + 16u, 64u);');
    expect(db).toContain('b0 = subgroupMatrixLoad<SgR, row_major>(&Bs, rb + kk * 64u + bcol + 0u, 64u);');
    expect(db).toContain('var<workgroup> As: array<f16, 2048>;');
    expect(parseSgName('sg:16x16x16-4x4-v4db')).toEqual({
      cfg: C16,
      tile: { WM: 4, WN: 4, V4: true, DB: true },
      tileName: '4x4-v4db',
    });
    expect(parseSgName('sg:16x16x16-4x4-v4')).toBeNull();
    expect(parseSgName(sgName({ M: 16, N: 8, K: 16 }, '4x2'))).toEqual({
      cfg: { M: 16, N: 8, K: 16 },
      tile: { WM: 4, WN: 2 },
      tileName: '4x2',
    });
    expect(parseSgName('sg:16x16x16-3x3')).toBeNull();
    // a fragment's elements over the subgroup, the tile loads over the threads, the workgroup memory
    // and invocations
    const lim = (maxBytes: number, maxThreads = 256) => ({ maxBytes, maxThreads });
    expect(sgFits({ M: 16, N: 16, K: 16 }, { WM: 4, WN: 4 }, 32, lim(32768))).toBe(true);
    expect(sgFits({ M: 16, N: 16, K: 16 }, { WM: 4, WN: 4 }, 32, lim(16384))).toBe(false);
    expect(sgFits({ M: 4, N: 4, K: 4 }, { WM: 2, WN: 2 }, 32, lim(32768))).toBe(false);
    expect(sgFits({ M: 16, N: 16, K: 16 }, { WM: 4, WN: 4 }, 64, lim(32768, 128))).toBe(false);
    // double-buffered in steps of K0: two buffers in the bytes of one of 2 K0 (20 KiB at 4 x 4)
    const db4 = { WM: 4, WN: 4, V4: true, DB: true };
    expect(sgFits({ M: 16, N: 16, K: 16 }, db4, 32, lim(20480))).toBe(true);
    expect(sgFits({ M: 16, N: 16, K: 16 }, db4, 32, lim(20479))).toBe(false);
    // vec4 groups: along a dimension of 4s (K0 = 2 is not), fewer than the threads or a multiple
    expect(sgFits({ M: 8, N: 8, K: 2 }, { WM: 4, WN: 4 }, 32, lim(32768))).toBe(true);
    expect(sgFits({ M: 8, N: 8, K: 2 }, db4, 32, lim(32768))).toBe(false);
  });

  it('relDiff: max difference over max magnitude; a NaN on one side only is Infinity', () => {
    expect(relDiff([1, 2, 4], [1, 2, 4])).toBe(0);
    expect(relDiff([1, 2, 4.004], [1, 2, 4])).toBeCloseTo(1e-3, 6);
    expect(relDiff([NaN, 1], [NaN, 1])).toBe(0);
    expect(relDiff([NaN, 1], [0, 1])).toBe(Infinity);
    expect(relDiff([1], [1, 2])).toBe(Infinity);
  });
});

// a device made for mixed precision (lavapipe offers shader-f16)
const noF16 = await mixedWebgpuMissing('webgpu subgroup-matrix tests');

const C16 = { M: 16, N: 16, K: 16 };
const C8 = { M: 8, N: 8, K: 8 };
const C16x8 = { M: 16, N: 8, K: 16 };

const mixed = () => initBackend('webgpu', undefined, 'mixed');

/** A new start of the engine on this adapter: the fp32 choices read back (or measured). */
async function restart(adapter: WebGpuAdapter) {
  resetMatmulTuning();
  await tuneMatmul(adapter, attentionProduct, MATMUL_STORE);
}

/**
 * A mixed device and a new speeds file (its folder given to fn) holding fp32 choices (the default
 * tile everywhere: measuring them is webgpu-matmul.test.ts's), then these subgroup-matrix
 * configurations offered, in this spelling.
 */
async function withFreshTuning(
  configs: SgConfig[],
  spelling: 'emulated' | 'device',
  fn: (adapter: WebGpuAdapter, dir: string) => Promise<void>,
) {
  await mixed();
  await withCacheDir(async (dir) => {
    const adapter = webgpuAdapter()!;
    const keys = ['NT', 'NN', 'TN', 'attn'].flatMap((p) => [`${p}:small`, `${p}:large`]);
    const choices = Object.fromEntries(keys.map((k) => [k, DEFAULT_TILE]));
    const ms = Object.fromEntries(keys.map((k) => [k, { [DEFAULT_TILE]: 1 }]));
    const measured = new Date().toISOString();
    expect(
      MATMUL_STORE.write({ adapter: adapter.name, version: KERNEL_VERSION, measured, choices, ms }),
    ).toHaveProperty('file');
    await restart(adapter);
    expect(matmulSummary()).toMatch(/^mixed: .*auto: NT:small 128x128x8-8x8,/);
    emulateSubgroupMatrix(configs, spelling);
    await fn(adapter, dir);
  });
}

describe.skipIf(noF16 !== null)('the subgroup-matrix kernel, emulated on this adapter', () => {
  afterEach(() => {
    emulateSubgroupMatrix(null);
    forceMixedChoice(null);
    resetMatmulTuning();
  });

  const NT: [boolean, boolean] = [false, true];
  const NN: [boolean, boolean] = [false, false];
  const TN: [boolean, boolean] = [true, false];
  const TT: [boolean, boolean] = [true, true];

  /** Each product (candidate, transposes, M x K x N, bias) against float64 of its f16-rounded inputs. */
  async function checkProducts(checks: [string, [boolean, boolean], number[], boolean][]) {
    for (const [c, [ta, tb], [M, K, N], withBias] of checks) {
      const mm = (x: tf.Tensor2D, y: tf.Tensor2D, bias?: tf.Tensor1D) => matMul2dOn(x, y, ta, tb, c, bias);
      const { a, b, bias, got, shape } = await randomProduct(mm, [M, K, N], ta, tb, withBias);
      expect(shape).toEqual([M, N]);
      // float64 of the f16-rounded inputs (the bias is added in f32, not rounded)
      const h = reference(a.map(f16), b.map(f16), M, K, N, ta, tb, bias);
      const x = reference(a, b, M, K, N, ta, tb, bias);
      let worst = 0;
      for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i] - h.ref[i]) / x.scale[i]);
      const what = `${c} ${ta ? 'T' : 'N'}${tb ? 'T' : 'N'} ${M}x${K}x${N}`;
      expect(worst, what).toBeLessThan(1e-6);
      // and not the f32 product: the inputs are rounded to f16
      let off = 0;
      for (let i = 0; i < got.length; i++) off = Math.max(off, Math.abs(got[i] - x.ref[i]) / x.scale[i]);
      expect(off, what).toBeGreaterThan(2e-5);
    }
  }

  // Lavapipe's compiler takes seconds per emulated pipeline (11 s for 4 x 4 fragments of 16 x 16),
  // one per operand layout and bias: each tile is checked at the layouts that differ for it.
  it('tiles of 16x16x16, 16x8x16, 8x8x8, each transpose, off-tile sizes, bias: f16 inputs, f32 sums', async () => {
    await mixed();
    emulateSubgroupMatrix([C16, C8, C16x8]);
    const cands = subgroupMatrixCandidates();
    // every tile of each configuration fits here (32 invocations a subgroup)
    for (const c of [
      'sg:16x16x16-2x2',
      'sg:16x16x16-4x2',
      'sg:16x16x16-4x4',
      'sg:16x16x16-4x2-v4db',
      'sg:16x16x16-4x4-v4db',
      'sg:8x8x8-2x2',
      'sg:8x8x8-4x4-v4db',
      'sg:16x8x16-4x2',
      'sg:16x8x16-4x2-v4db',
    ])
      expect(cands).toContain(c);
    resetGpuCounters();
    await checkProducts([
      ['sg:16x16x16-2x2', NT, [77, 300, 45], true],
      ['sg:16x16x16-2x2', NN, [64, 96, 48], false],
      ['sg:16x16x16-2x2', TN, [77, 300, 45], false],
      ['sg:16x16x16-2x2', TT, [33, 40, 70], true],
      ['sg:16x16x16-4x4', NT, [130, 300, 140], true],
      ['sg:16x8x16-4x2', NT, [77, 300, 45], true],
      ['sg:16x8x16-4x2', TN, [64, 96, 48], false],
      ['sg:8x8x8-2x2', NT, [77, 300, 45], false],
    ]);
    expect(gpuCounters().byProgram['matmul_sg:16x16x16-4x4']).toBe(1);
  });

  it('the double-buffered tiles: vec4 reads along K, along M and N, scalar where a size is not of 4s', async () => {
    await mixed();
    emulateSubgroupMatrix([C16, C8, C16x8]);
    resetGpuCounters();
    await checkProducts([
      // K off the k step (100 = 6 x 16 + 4), M and N off the tile
      ['sg:16x16x16-4x2-v4db', NT, [130, 100, 140], true],
      // K odd: groups of 4 along M (A^T) and N (B)
      ['sg:16x8x16-4x2-v4db', TN, [64, 45, 48], false],
      // M = 66: A^T's rows are not in groups of 4, the scalar reads
      ['sg:16x8x16-4x2-v4db', TN, [66, 45, 48], false],
      ['sg:8x8x8-4x4-v4db', NN, [77, 64, 96], true],
    ]);
    const ran = gpuCounters().byProgram;
    expect(ran['matmul_sg:16x16x16-4x2-v4db']).toBe(1);
    expect(ran['matmul_sg:16x8x16-4x2-v4db']).toBe(1);
    expect(ran['matmul_sg:16x8x16-4x2-v4db_scalar']).toBe(1);
    expect(ran['matmul_sg:8x8x8-4x4-v4db']).toBe(1);
  });

  it('the sums are f32 (2048 + 4095 x 0.25 = 3071.75), an operand of 70000 gives NaN, 60000 not', async () => {
    await mixed();
    emulateSubgroupMatrix([C16]);
    const e = await f16EdgeCases((a, b) => matMul2dOn(a, b, false, true, 'sg:16x16x16-2x2'));
    expect(e.sum).toBe(3071.75);
    expect(e.overflow.every((v) => Number.isNaN(v))).toBe(true);
    expect(e.fits.every((v) => v === 8 * 60000)).toBe(true);
  });

  it("the attention's batched products (strided heads, T = 19, head size 12) as the f16 kernel's", async () => {
    await mixed();
    emulateSubgroupMatrix([C8, C16x8]);
    const [B, A, T, D] = [2, 3, 19, 12];
    const q = tf.tensor2d(rand(B * T * A * D, 4), [B * T, A * D]);
    const k = tf.tensor2d(rand(B * T * A * D, 5), [B * T, A * D]);
    const p = tf.tensor2d(rand(B * A * T * T, 6), [B * A * T, T]);
    for (const c of ['sg:8x8x8-2x2', 'sg:16x8x16-2x2'])
      for (const which of ['scores', 'context'] as const) {
        const x = which === 'scores' ? q : p;
        const got = attentionProduct(c, which, x, k, { B, A, T, D });
        const want = attentionProduct('f16:64x64x16-4x4', which, x, k, { B, A, T, D });
        expect(got.shape).toEqual(want.shape);
        expect(relDiff(await got.data(), await want.data()), `${c} ${which}`).toBeLessThan(1e-6);
        tf.dispose([got, want]);
      }
    tf.dispose([q, k, p]);
  });

  it("a mixed training step on it: as on the f16 kernel and the cpu's fp32; recorded, replayed", async () => {
    await mixed();
    emulateSubgroupMatrix([C8]);
    const batch = hostBatch(5);
    const step = async (choice: string | null) => {
      // null: the cpu backend, fp32
      if (choice === null) await initBackend('cpu');
      else forceMixedChoice(choice);
      const { cfg, params } = tinyModel(1, { hidden_dropout_prob: 0, attention_probs_dropout_prob: 0 });
      const spec: StepSpec<HostBatch> = { params, clipNorm: 1, loss: classifierStepLoss(params, cfg) };
      const before = await snapshot(params);
      const opt = new AdamW({ lr: 1e-2, weightDecay: 0, eps: 1 });
      resetGpuCounters();
      const q = await queueTrainStep(spec, opt, batch, new Rng(3), 1e-2);
      const loss = await q.loss;
      const programs = { ...gpuCounters().byProgram };
      const after = await snapshot(params);
      // then recorded and replayed: the sg dispatches are captured like any other
      const rec = stepRecording(spec, opt, () => {});
      resetDeviceCounters();
      for (let i = 0; i < 3; i++) await (await queueTrainStep(spec, opt, batch, new Rng(4 + i), 1e-2, rec)).loss;
      const replayed = deviceCounters().replayed;
      rec?.recorder.dispose();
      opt.dispose();
      spec.lossScale?.dispose();
      for (const v of params.values()) v.dispose();
      if (choice === null) await mixed();
      return {
        loss,
        programs,
        d: [...after].map(([n, a]) => [n, a.map((x, i) => x - before.get(n)![i])] as const),
        replayed,
      };
    };
    const sg = await step('sg:8x8x8-2x2');
    const f = await step('f16:64x64x16-4x4');
    expect(Object.keys(sg.programs).some((n) => n.startsWith('matmul_sg:8x8x8-2x2'))).toBe(true);
    expect(Object.keys(f.programs).some((n) => n.startsWith('matmul_sg'))).toBe(false);
    expect(Math.abs(sg.loss - f.loss)).toBeLessThan(1e-5 * Math.abs(f.loss));
    // each update within 1e-3 of the largest of its tensor (the key bias's gradient is 0 in exact
    // arithmetic, its update rounding noise: 1e-7 absolute)
    for (const [i, [n, w]] of f.d.entries()) {
      const top = Math.max(...w.map(Math.abs));
      const worst = Math.max(...w.map((x, j) => Math.abs(x - sg.d[i][1][j])));
      expect(worst, n).toBeLessThan(1e-3 * top + 1e-7);
    }
    expect(sg.replayed).toBeGreaterThanOrEqual(1);
    // against the cpu backend's fp32 step: loss within 1e-3, each update within 5e-3 (relative norm),
    // the f16 kernel's bounds (webgpu-mixed.test.ts)
    const cpu = await step(null);
    expect(Math.abs(sg.loss - cpu.loss)).toBeLessThan(1e-3 * Math.abs(cpu.loss));
    for (const [i, [n, w]] of cpu.d.entries()) expect(relErr(sg.d[i][1], w), n).toBeLessThan(5e-3);
  });

  it('tuneMixed: the f16 kernel against each candidate per product and size, kept and read back', async () => {
    await withFreshTuning([C8], 'emulated', async (adapter, dir) => {
      const lines: string[] = [];
      const m = await tuneMixed(adapter, attentionProduct, MATMUL_STORE, (l) => lines.push(l));
      expect(m).not.toBeNull();
      expect(m!.form).toBe('emulated');
      expect(m!.rejected).toEqual({});
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(
        /^webgpu mixed matmul measured on .* \(subgroup matrices emulated subgroup 32 f16->f32 8x8x8; emulated\): NT:small \S+/,
      );
      const keys = ['NT', 'NN', 'TN', 'attn'].flatMap((p) => [`${p}:small`, `${p}:large`]);
      expect(Object.keys(m!.choices).sort()).toEqual(keys.sort());
      for (const [k, c] of Object.entries(m!.choices)) {
        // the f16 kernel and every candidate timed; the fastest chosen
        expect(
          Object.keys(m!.ms[k])
            .filter((x) => x.startsWith('sg:'))
            .sort(),
        ).toEqual(subgroupMatrixCandidates().sort());
        expect(m!.ms[k][c]).toBe(Math.min(...Object.values(m!.ms[k])));
        expect(mixedChoice(k.split(':')[0] as 'NT', k.endsWith('large') ? 1 << 22 : 1)).toBe(c);
      }
      expect(readSpeeds(path.join(dir, 'backend-speeds.json')).matmul?.[adapter.name]?.mixed).toEqual(m);
      // the next start reads it
      await restart(adapter);
      const again = await tuneMixed(adapter, attentionProduct, MATMUL_STORE, (l) => lines.push(l));
      expect(lines).toHaveLength(1);
      expect(again).toEqual(m);
      // a kept part that is not ours is measured again, the fp32 choices stay
      const file = path.join(dir, 'backend-speeds.json');
      const j = JSON.parse(fs.readFileSync(file, 'utf8'));
      j.matmul[adapter.name].mixed = { offer: 1, form: 'x' };
      fs.writeFileSync(file, JSON.stringify(j));
      expect(readSpeeds(file).matmul?.[adapter.name]?.mixed).toBeUndefined();
      expect(readSpeeds(file).matmul?.[adapter.name]?.choices).toEqual(j.matmul[adapter.name].choices);
    });
  });

  it('a measurement that did not finish is not tried again; BERT_PRUNER_WEBGPU_SUBGROUP_MATRIX=off', async () => {
    await withFreshTuning([C8], 'emulated', async (adapter, dir) => {
      // what a process that died while measuring leaves behind: its record, marked unfinished
      const dying = {
        ...MATMUL_STORE,
        write: (t: MatmulTuning) => (t.mixed?.form === null ? MATMUL_STORE.write(t) : { problem: 'died' }),
      };
      await tuneMixed(adapter, attentionProduct, dying);
      const kept = readSpeeds(path.join(dir, 'backend-speeds.json')).matmul?.[adapter.name]?.mixed;
      expect(kept).toMatchObject({ form: null, choices: {} });
      expect(kept!.rejected['*']).toMatch(/^an earlier measurement of them did not finish/);
      await restart(adapter);
      const lines: string[] = [];
      const m = await tuneMixed(adapter, attentionProduct, MATMUL_STORE, (l) => lines.push(l));
      expect(m).toEqual(kept);
      expect(lines).toEqual([
        expect.stringMatching(/^webgpu subgroup matrices left out on .*: an earlier measurement/),
      ]);
      expect(mixedChoice('NT', 1)).toMatch(/^f16:/);
      expect(subgroupMatrixCandidates()).not.toEqual([]);
      process.env.BERT_PRUNER_WEBGPU_SUBGROUP_MATRIX = 'off';
      try {
        expect(subgroupMatrixCandidates()).toEqual([]);
        process.env.BERT_PRUNER_WEBGPU_SUBGROUP_MATRIX = 'on';
        expect(() => subgroupMatrixCandidates()).toThrow("BERT_PRUNER_WEBGPU_SUBGROUP_MATRIX='on': one of auto, off");
      } finally {
        delete process.env.BERT_PRUNER_WEBGPU_SUBGROUP_MATRIX;
      }
    });
  });

  it("Dawn's spelling where the feature is missing: each candidate left out with its error, f16 runs", async () => {
    await withFreshTuning([C16], 'device', async (adapter) => {
      const lines: string[] = [];
      const m = await tuneMixed(adapter, attentionProduct, MATMUL_STORE, (l) => lines.push(l));
      expect(m!.form).toBeNull();
      expect(Object.keys(m!.rejected).sort()).toEqual(subgroupMatrixCandidates().sort());
      for (const why of Object.values(m!.rejected)) expect(why).toMatch(/^did not compile: .*is not allowed/);
      for (const c of Object.values(m!.choices)) expect(c).toMatch(/^f16:/);
      expect(mixedChoice('NT', 1)).toMatch(/^f16:/);
      expect(lines[0]).toMatch(/; none\): .*; left out: sg:16x16x16-2x2 did not compile: /);
      // the device survived the refused compiles: a product still runs
      const y = matMul2dOn(
        tf.ones([2, 3]) as tf.Tensor2D,
        tf.ones([4, 3]) as tf.Tensor2D,
        false,
        true,
        mixedChoice('NT', 8),
      );
      expect([...(await y.data())]).toEqual(new Array(8).fill(3));
      y.dispose();
    });
  });
});
