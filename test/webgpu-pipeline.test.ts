// Every stage on the webgpu backend (any WebGPU adapter; in CI lavapipe, a software Vulkan):
// the tiny pipeline through the CLI, its model's predictions against the same checkpoint on wasm,
// fine-tuning with FGM and weight averaging cancelled and resumed, and a GPU error failing a stage
// with one line. Skipped with one line where no adapter is found.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { initBackend } from '../src/engine/backend';
import { simulateWebGpuError } from '../src/engine/backend/webgpu';
import { resolveSettings } from '../src/engine/config/settings';
import { CancelledError, UserError } from '../src/engine/errors';
import { runPaths } from './helpers/run-folders';
import { readSafetensors } from '../src/engine/io/safetensors';
import type { EngineEvent } from '../src/engine/protocol';
import { finetuneClassifier as finetune } from '../src/engine/train/classifier';
import { bp } from './helpers/cli';
import { webgpuMissing } from './helpers/backends';
import { pretrainedRun, SMALL_MODEL } from './helpers/pretrained';

const missing = await webgpuMissing('webgpu pipeline tests');

const probs = (file: string) =>
  fs
    .readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l).probs as number[]);

describe.skipIf(missing !== null)('the webgpu backend end to end', () => {
  it('runs the tiny pipeline: no fallback line, metric within 0.01 of wasm, predictions within 1e-4', async () => {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), 'bp-webgpu-'));
    const data = path.join(d, 'data');
    let r = await bp(['demo-data', '--out', data, '--train-rows', '300', '--test-rows', '60']);
    expect(r.code, r.stderr).toBe(0);
    const run = path.join(d, 'run');
    r = await bp(['pipeline', '--data', data, '--run', run, '--preset', 'tiny', '--backend', 'webgpu']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/backend: webgpu \(.+\)/);
    const m = JSON.parse(fs.readFileSync(path.join(run, 'run.json'), 'utf8'));
    expect(m.backend).toMatch(/^webgpu \(/);
    for (const s of ['pretrain', 'finetune', 'evaluate', 'analyze', 'prune', 'refinetune', 'evaluate-pruned'])
      expect(m.stages[s]?.status, s).toBe('done');
    // Every training step and inference batch is recordable (backend/webgpu-record.ts): no fallback.
    expect(r.stderr).not.toMatch(/not recorded/);
    expect(r.stderr).toMatch(/train step: recordings: /);
    // The same pipeline on wasm ends within 0.01 of the same test metric.
    const wasmRun = path.join(d, 'run-wasm');
    const rw = await bp(['pipeline', '--data', data, '--run', wasmRun, '--preset', 'tiny', '--backend', 'wasm']);
    expect(rw.code, rw.stderr).toBe(0);
    const mw = JSON.parse(fs.readFileSync(path.join(wasmRun, 'run.json'), 'utf8'));
    const score = (x: typeof m) => x.stages['evaluate-pruned'].metrics.score as number;
    expect(Math.abs(score(m) - score(mw))).toBeLessThan(0.01);

    // auto takes no software adapter, and says nothing of the Vulkan drivers it looked at.
    r = await bp(['analyze', '--model', path.join(run, 'finetune')]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/backend: (wasm|cpu)/);
    expect(r.stderr).not.toMatch(/Warning|vkCreateInstance/);

    const test = path.join(run, 'data', 'test.csv');
    for (const ck of ['finetune', 'refinetune']) {
      const outs: Record<string, string> = {};
      for (const backend of ['webgpu', 'wasm']) {
        outs[backend] = path.join(d, `${ck}-${backend}.jsonl`);
        r = await bp([
          'predict',
          '--model',
          path.join(run, ck),
          '--data',
          test,
          '--out',
          outs[backend],
          '--backend',
          backend,
        ]);
        expect(r.code, r.stderr).toBe(0);
      }
      const [a, b] = [probs(outs.webgpu), probs(outs.wasm)];
      expect(a).toHaveLength(60);
      let worst = 0;
      a.forEach((row, i) => row.forEach((p, j) => (worst = Math.max(worst, Math.abs(p - b[i][j])))));
      expect(worst, ck).toBeLessThan(1e-4);
    }
    fs.rmSync(d, { recursive: true, force: true });
  }, 1_500_000);

  it('fine-tuning with FGM and weight averaging, cancelled after epoch 1 and resumed, ends the same', async () => {
    const backend = await initBackend('webgpu');
    const { root, run } = await pretrainedRun('bp-webgpu-resume-', 3, backend);
    const p = runPaths(run);
    const s = resolveSettings('tiny', {
      model: SMALL_MODEL,
      finetune: { epochs: 2, batch_size: 16, ema_decay: 0.9, fgm_epsilon: 0.5 },
    });
    const job = (name: string, resume = false) => ({
      stage: 'finetune' as const,
      from: p.pretrain,
      out: path.join(root, name),
      last: path.join(root, `${name}-last`),
      settings: s.finetune,
      resume,
    });
    await finetune(run, s, { backend, emit: () => {} }, job('a'));
    const controller = new AbortController();
    const emit = (e: EngineEvent) => {
      if (e.type === 'epoch' && e.epoch === 1) controller.abort();
    };
    await expect(finetune(run, s, { backend, emit, signal: controller.signal }, job('b'))).rejects.toBeInstanceOf(
      CancelledError,
    );
    await finetune(run, s, { backend, emit: () => {} }, job('b', true));
    // GPU sums are not ordered, so equal within float noise (bit-for-bit is the wasm and cpu promise).
    for (const file of ['a-last/model.safetensors', 'a-last/optimizer.safetensors', 'a/model.safetensors']) {
      const a = readSafetensors(path.join(root, file));
      const b = readSafetensors(path.join(root, file.replace(/^a/, 'b')));
      expect([...b.keys()]).toEqual([...a.keys()]);
      for (const [name, t] of a) {
        const other = b.get(name)!.data;
        let worst = 0;
        t.data.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - other[i]) / (1 + Math.abs(v)))));
        expect(worst, `${file} ${name}`).toBeLessThan(1e-4);
      }
    }
    fs.rmSync(root, { recursive: true, force: true });
  }, 600_000);

  it('a GPU error (out of memory, lost device) fails the training stage with one line', async () => {
    const backend = await initBackend('webgpu');
    const { root, run } = await pretrainedRun('bp-webgpu-lost-', 4, backend);
    const s = resolveSettings('tiny', { model: SMALL_MODEL, finetune: { epochs: 1, batch_size: 16 } });
    let steps = 0;
    const emit = (e: EngineEvent) => {
      if (e.type === 'step' && ++steps === 2)
        simulateWebGpuError('out of GPU memory (test adapter): Not enough memory');
    };
    const job = {
      stage: 'finetune' as const,
      from: runPaths(run).pretrain,
      out: path.join(root, 'x'),
      last: path.join(root, 'x-last'),
      settings: s.finetune,
    };
    const err = await finetune(run, s, { backend, emit }, job).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as Error).message).toMatch(
      /^out of GPU memory \(test adapter\): Not enough memory; stopped \(.*--resume/,
    );
    expect((err as Error).message).not.toContain('\n');
    tf.disposeVariables();
    fs.rmSync(root, { recursive: true, force: true });
  }, 300_000);
});
