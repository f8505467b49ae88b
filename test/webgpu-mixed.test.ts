// Mixed precision on the webgpu backend (--precision mixed): the Dawn toggles and device features
// asked for only in that mode (no adapter needed); on an adapter with shader-f16 (lavapipe has it):
// the f16-input / f32-accumulate matmul against float64, its accumulation shown to be f32, an
// overflowing operand turned into NaN; a training step's loss, gradients and update against the
// cpu backend; dynamic loss scaling skipping an overflowing step (recorded and replayed steps
// included) and saying so in the step events and the run history. Skipped with one line where
// there is no WebGPU adapter or it lacks shader-f16.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-cpu';
import { describe, expect, it } from 'vitest';
import { activePrecision, initBackend, PRECISIONS, precisionNote } from '../src/engine/backend';
import { parse, runCommand } from '../src/engine/commands';
import { loadRun } from '../src/engine/io/run';
import { ensureRun, recordStage } from '../src/engine/stages/context';
import { COMMON_OPTIONS } from '../src/engine/stages/registry';
import { statusBarText } from '../src/extension/progress';
import {
  dawnFlags,
  MIXED_TOGGLES,
  precisionFeatures,
  precisionOn,
  TIMESTAMP_TOGGLE,
} from '../src/engine/backend/webgpu';
import { blockedMatMul2d, DEFAULT_TILE, TILES } from '../src/engine/backend/webgpu-matmul';
import { deviceCounters, resetDeviceCounters } from '../src/engine/backend/webgpu-record';
import type { Batch } from '../src/engine/data/encode';
import { Rng } from '../src/engine/data/rng';
import { historyLine } from '../src/engine/io/history';
import { ops } from '../src/engine/ops';
import type { EngineEvent } from '../src/engine/protocol';
import { LossScaler } from '../src/engine/train/loss-scale';
import { queueTrainStep, stepRecording, StepSpec, train } from '../src/engine/train/loop';
import { trainSpec } from './helpers/train';
import { AdamW } from '../src/engine/train/optim';
import { tinyModel } from './helpers/tiny';
import { mixedWebgpuMissing } from './helpers/backends';
import {
  classifierStepLoss,
  f16,
  f16EdgeCases,
  hostBatch,
  rand,
  reference,
  relErr,
  snapshot,
  type HostBatch,
} from './helpers/webgpu';

describe('precision mixed: what is asked of Dawn', () => {
  it('fp32 enables no Dawn feature, asks for no device feature; mixed: the toggles, the features offered', () => {
    // exact timestamps in both (bench's profile)
    expect(TIMESTAMP_TOGGLE).toBe('disable-dawn-features=timestamp_quantization');
    expect(dawnFlags('fp32', {})).toEqual([TIMESTAMP_TOGGLE]);
    expect(dawnFlags('fp32', { BERT_PRUNER_WEBGPU_ADAPTER: 'NVIDIA' })).toEqual(['adapter=NVIDIA', TIMESTAMP_TOGGLE]);
    expect(dawnFlags('fp32', {}).some((f) => f.startsWith('enable-dawn-features'))).toBe(false);
    expect(dawnFlags('mixed', {})).toEqual([TIMESTAMP_TOGGLE, MIXED_TOGGLES]);
    expect(MIXED_TOGGLES).toBe('enable-dawn-features=vulkan_enable_f16_on_nvidia,allow_unsafe_apis');
    expect(dawnFlags('mixed', { BERT_PRUNER_WEBGPU_ADAPTER: 'NVIDIA' })).toEqual([
      'adapter=NVIDIA',
      TIMESTAMP_TOGGLE,
      MIXED_TOGGLES,
    ]);
    const all = new Set(['timestamp-query', 'shader-f16', 'subgroups', 'chromium-experimental-subgroup-matrix']);
    expect(precisionFeatures('fp32', all)).toEqual([]);
    expect(precisionFeatures('mixed', all)).toEqual([
      'shader-f16',
      'subgroups',
      'chromium-experimental-subgroup-matrix',
    ]);
    expect(precisionFeatures('mixed', new Set(['timestamp-query']))).toEqual([]);
  });

  it('an adapter without shader-f16 (or a device made for fp32): one line, and fp32', () => {
    const name = 'NVIDIA H200';
    expect(precisionOn('mixed', { f16: true, madeFor: 'mixed', name })).toEqual({ precision: 'mixed', note: null });
    expect(precisionOn('fp32', { f16: true, madeFor: 'mixed', name })).toEqual({ precision: 'fp32', note: null });
    expect(precisionOn('mixed', { f16: false, madeFor: 'mixed', name })).toEqual({
      precision: 'fp32',
      note: 'precision mixed: NVIDIA H200 offers no shader-f16; the stage runs in fp32',
    });
    expect(precisionOn('mixed', { f16: false, madeFor: 'fp32', name }).note).toBe(
      'precision mixed: this engine process started the webgpu device in fp32 (NVIDIA H200); the stage runs in fp32',
    );
  });

  it('a step event of a skipped step keeps skipped and the scale in the history line', () => {
    const e: EngineEvent = {
      type: 'step',
      stage: 'finetune',
      epoch: 1,
      epochs: 1,
      step: 3,
      steps: 9,
      loss: 0.5,
      lr: 1e-3,
      tokensPerSecond: 10,
      etaSeconds: 1,
      lossScale: 16384,
      skipped: true,
    };
    expect(historyLine(e)).toMatchObject({ type: 'step', step: 3, scale: 16384, skipped: true });
    const { lossScale: _s, skipped: _k, ...fp32 } = e;
    const line = historyLine(fp32)!;
    expect('scale' in line || 'skipped' in line).toBe(false);
  });
});

describe('precision: the option, the setting, run.json, the status bar', () => {
  const root = path.join(__dirname, '..');
  const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));

  it('--precision is a common option; bertPruner.precision: the same values, fp32 by default', async () => {
    expect(COMMON_OPTIONS.precision.type).toBe('string');
    expect(parse('bench', ['--precision', 'mixed'])).toMatchObject({ precision: 'mixed' });
    await expect(runCommand('bench', ['--precision', 'half'], { emit: () => {} })).rejects.toThrow(
      "--precision: 'half' is not one of fp32, mixed",
    );
    const p = pkg.contributes.configuration.properties['bertPruner.precision'];
    expect(p.enum).toEqual(PRECISIONS);
    expect(p.default).toBe('fp32');
    expect(p.enumDescriptions).toHaveLength(PRECISIONS.length);
    const src = (f: string) => fs.readFileSync(path.join(root, 'src', 'extension', f), 'utf8');
    expect(src('workspace.ts')).toMatch(/precision: c\.get<string>\('precision', 'fp32'\)/);
    expect(src('engineHost.ts')).toMatch(/\['--precision', precision\]/);
    expect(src('engineHost.ts')).toMatch(/active\.precision = event\.precision/);
  });

  it('the status bar shows mixed beside the backend, the tooltip either precision', () => {
    const run = { stage: 'finetune', title: 'Fine-tune runs/q', progress: 'finetune epoch 1/2 · step 5/10 · loss 1' };
    const mixed = statusBarText([{ ...run, backend: 'webgpu (NVIDIA H200)', precision: 'mixed' }]);
    expect(mixed.text).toBe('$(sync~spin) finetune: 50% · webgpu: NVIDIA H200 · mixed');
    expect(mixed.tooltip).toContain('backend: webgpu (NVIDIA H200), precision mixed');
    const fp32 = statusBarText([{ ...run, backend: 'wasm', precision: 'fp32' }]);
    expect(fp32.text).toBe('$(sync~spin) finetune: 50% · wasm');
    expect(fp32.tooltip).toContain('backend: wasm, precision fp32');
  });

  it("run.json records the stage's precision (fp32 where the context has none)", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bp-precision-'));
    try {
      ensureRun(dir, {});
      const ctx = { emit: () => {}, backend: 'webgpu (x)', precision: 'mixed' as const };
      await recordStage(ctx, dir, 'finetune', async () => ({}));
      expect(loadRun(dir).stages.finetune).toMatchObject({ backend: 'webgpu (x)', precision: 'mixed' });
      await recordStage({ emit: () => {}, backend: 'wasm' }, dir, 'evaluate', async () => ({}));
      expect(loadRun(dir).stages.evaluate.precision).toBe('fp32');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

// the device made for mixed precision first (lavapipe offers shader-f16 with or without the toggles)
const noF16 = await mixedWebgpuMissing('webgpu mixed-precision tests');

const withGpu = async (backend: 'cpu' | 'webgpu') =>
  backend === 'cpu' ? initBackend('cpu') : initBackend('webgpu', undefined, 'mixed');

describe.skipIf(noF16 !== null)('precision mixed on webgpu (f16 inputs, f32 accumulation)', () => {
  it('the backend runs mixed: ops().precision() and activePrecision(), no note; on cpu one line and fp32', async () => {
    await withGpu('webgpu');
    expect(activePrecision()).toBe('mixed');
    expect(ops().precision()).toBe('mixed');
    expect(precisionNote()).toBeNull();
    await initBackend('cpu', undefined, 'mixed');
    expect(activePrecision()).toBe('fp32');
    expect(ops().precision()).toBe('fp32');
    expect(precisionNote()).toBe('precision mixed needs the webgpu backend; the stage runs in fp32 on cpu');
    await withGpu('webgpu');
    expect(activePrecision()).toBe('mixed');
  });

  it('every tile and transpose: float64 of f16-rounded inputs within 1e-6, off the exact one', async () => {
    await withGpu('webgpu');
    for (const [M, K, N] of [
      [77, 300, 45],
      [64, 256, 48],
    ]) {
      const a = rand(M * K, 1);
      const b = rand(K * N, 2);
      const ah = a.map(f16);
      const bh = b.map(f16);
      for (const tile of Object.keys(TILES))
        for (const [ta, tb] of [
          [false, true],
          [false, false],
          [true, false],
        ]) {
          const at = tf.tensor2d(a, ta ? [K, M] : [M, K]);
          const bt = tf.tensor2d(b, tb ? [N, K] : [K, N]);
          const y = blockedMatMul2d(at as tf.Tensor2D, bt as tf.Tensor2D, ta, tb, tile, undefined, true);
          const got = (await y.data()) as Float32Array;
          tf.dispose([at, bt, y]);
          const h = reference(ah, bh, M, K, N, ta, tb);
          const x = reference(a, b, M, K, N, ta, tb);
          let worstH = 0;
          let worstX = 0;
          for (let i = 0; i < got.length; i++) {
            worstH = Math.max(worstH, Math.abs(got[i] - h.ref[i]) / x.scale[i]);
            worstX = Math.max(worstX, Math.abs(got[i] - x.ref[i]) / x.scale[i]);
          }
          const what = `${M}x${K}x${N} ${tile} ${ta ? 'T' : 'N'}${tb ? 'T' : 'N'}`;
          // f32 sums of the exact products of the f16-rounded inputs (lavapipe: 2e-7)
          expect(worstH, what).toBeLessThan(1e-6);
          // against the unrounded inputs: each product within 2 * 2^-11 relative (f16's rounding; lavapipe: 1e-4)
          expect(worstX, what).toBeLessThan(2 ** -10);
          expect(worstX, `${what}: the inputs are rounded to f16`).toBeGreaterThan(2e-5);
        }
    }
  });

  it('the sums are f32: 2048 + 4095 x 0.25 = 3071.75 (an f16 sum would stay at 2048)', async () => {
    await withGpu('webgpu');
    const e = await f16EdgeCases((a, b) => blockedMatMul2d(a, b, false, true, DEFAULT_TILE, undefined, true));
    expect(e.sum).toBe(3071.75);
  });

  it('an operand beyond f16 (70000) makes the outputs of its workgroup NaN; others stay', async () => {
    await withGpu('webgpu');
    const e = await f16EdgeCases((a, b) => blockedMatMul2d(a, b, false, true, DEFAULT_TILE, undefined, true));
    expect(e.overflow.every((v) => Number.isNaN(v))).toBe(true);
    expect(e.fits.every((v) => v === 8 * 60000)).toBe(true);
  });
});

function setup(seed: number, dropout: boolean) {
  const { cfg, params } = tinyModel(seed, dropout ? {} : { hidden_dropout_prob: 0, attention_probs_dropout_prob: 0 });
  const spec: StepSpec<HostBatch> = { params, clipNorm: 1, loss: classifierStepLoss(params, cfg) };
  return { cfg, params, spec };
}

describe.skipIf(noF16 !== null)('a mixed-precision training step against the cpu backend', () => {
  it('loss within 1e-3, each gradient (loss-scaled) and update within 5e-3 of the cpu ones (rel. norm)', async () => {
    const batch = hostBatch(5);
    // loss and gradients: the scaled loss's gradients divided by the scale, as the step's kernel does
    const lossAndGrads = async (backend: 'cpu' | 'webgpu') => {
      await withGpu(backend);
      const { params, spec } = setup(1, false);
      const scaler = backend === 'webgpu' ? new LossScaler() : null;
      const vars = [...params.values()];
      const names = [...params.keys()];
      const { value, grads } = tf.variableGrads(() => {
        const l = spec.loss(batch, new Rng(3));
        return scaler ? scaler.scaled(l) : l;
      }, vars);
      const s = scaler ? scaler.initial : 1;
      const loss = (await value.data())[0] / s;
      const g = new Map<string, Float32Array>();
      for (const [i, v] of vars.entries()) {
        const t = grads[v.name];
        g.set(
          names[i],
          ((await t.data()) as Float32Array).map((x) => x / s),
        );
      }
      tf.dispose([value, ...Object.values(grads)]);
      scaler?.dispose();
      for (const v of vars) v.dispose();
      return { loss, g };
    };
    const want = await lossAndGrads('cpu');
    const got = await lossAndGrads('webgpu');
    expect(Math.abs(got.loss - want.loss)).toBeLessThan(1e-3 * Math.abs(want.loss));
    // (lavapipe: 1.4e-3 at most)
    for (const [n, w] of want.g) expect(relErr(got.g.get(n)!, w), n).toBeLessThan(5e-3);

    // one whole step (loss scaling, clipping, AdamW): eps = 1 makes AdamW's first update about
    // lr g / (|g| + 1), so a gradient off by the scale would show
    const update = async (backend: 'cpu' | 'webgpu') => {
      await withGpu(backend);
      const { params, spec } = setup(1, false);
      const before = await snapshot(params);
      const opt = new AdamW({ lr: 1e-2, weightDecay: 0, eps: 1 });
      const q = await queueTrainStep(spec, opt, batch, new Rng(3), 1e-2);
      const loss = await q.loss;
      const scaled = q.scaled ? await q.scaled : null;
      const after = await snapshot(params);
      const d = new Map([...after].map(([n, a]) => [n, a.map((x, i) => x - before.get(n)![i])]));
      opt.dispose();
      spec.lossScale?.dispose();
      for (const v of params.values()) v.dispose();
      return { loss, scaled, d };
    };
    const u0 = await update('cpu');
    const u1 = await update('webgpu');
    expect(u0.scaled).toBeNull();
    expect(u1.scaled).toMatchObject({ scale: 2 ** 15, skipped: false, skippedTotal: 0 });
    expect(Math.abs(u1.loss - u0.loss)).toBeLessThan(1e-3 * Math.abs(u0.loss));
    for (const [n, w] of u0.d) expect(relErr(u1.d.get(n)!, w), n).toBeLessThan(5e-3);
  });
});

describe.skipIf(noF16 !== null)('dynamic loss scaling on webgpu', () => {
  it('an overflowing step is skipped, the scale halved, the events say so; recorded steps too', async () => {
    await withGpu('webgpu');
    const { params, spec: plain } = setup(2, true);
    // FGM on: its perturbation of the embeddings must not carry an overflow into them
    const spec = { ...plain, fgmEpsilon: 0.5 };
    const before = await snapshot(params);
    // 2^40: the scaled gradients reach the matmuls beyond f16's range; 2^40 / 2^5 still does
    const scaler = new LossScaler({ init: 2 ** 40 });
    const events: EngineEvent[] = [];
    const batches = [hostBatch(5), hostBatch(6), hostBatch(7), hostBatch(8)].map((b) => ({ ...b, rows: [0, 1, 2] }));
    resetDeviceCounters();
    const tspec = trainSpec({
      ...(spec as unknown as StepSpec<Batch>),
      lossScale: scaler,
      batches: () => batches,
      emit: (e) => events.push(e),
    });
    const opt = await train(tspec);
    const steps = events.filter((e) => e.type === 'step');
    expect(steps).toHaveLength(4);
    // step 1 op by op, 2 recorded, 3 and 4 replayed: all skipped, the scale halved each time
    expect(deviceCounters().replayed).toBe(2);
    steps.forEach((e, i) => expect(e, `step ${i + 1}`).toMatchObject({ skipped: true, lossScale: 2 ** (39 - i) }));
    for (const e of steps) expect(Number.isFinite((e as { loss: number }).loss)).toBe(true);
    const epoch = events.find((e) => e.type === 'epoch') as { metrics: Record<string, number> };
    expect(epoch.metrics.skipped_steps).toBe(4);
    expect(historyLine(steps[0])).toMatchObject({ skipped: true, scale: 2 ** 39 });
    const after = await snapshot(params);
    for (const [n, w] of before) expect(after.get(n), n).toEqual(w);
    for (const m of opt.m.values()) expect(Math.max(...((await m.data()) as Float32Array).map(Math.abs))).toBe(0);
    // a scale that fits: no step skipped, the scale doubled after growthInterval good steps (recorded too)
    const good = new LossScaler({ init: 2 ** 10, growthInterval: 2 });
    const rec = stepRecording({ ...spec, lossScale: good }, opt, () => {});
    const s2 = { ...spec, lossScale: good };
    const seen = [];
    for (const [i, b] of batches.entries()) {
      const q = await queueTrainStep(s2, opt, b, new Rng(i), 1e-2, rec);
      seen.push(await q.scaled!);
    }
    expect(seen.map((x) => x.skipped)).toEqual([false, false, false, false]);
    expect(seen.map((x) => x.scale)).toEqual([2 ** 10, 2 ** 11, 2 ** 11, 2 ** 12]);
    expect(rec!.recorder.stats.hits).toBeGreaterThanOrEqual(1);
    const moved = await snapshot(params);
    expect([...moved].some(([n, w]) => w.some((x, i) => x !== before.get(n)![i]))).toBe(true);
    rec!.recorder.dispose();
    good.dispose();
    scaler.dispose();
    opt.dispose();
    for (const v of params.values()) v.dispose();
  });
});
