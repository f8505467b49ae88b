// The bench stage: shape names, and one tiny end-to-end run (no timing asserts: only that every
// figure is there, positive and consistent with the others).
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { backendLabel, initBackend } from '../src/engine/backend';
import type { EngineEvent } from '../src/engine/protocol';
import { BENCH_BATCH, BENCH_SEQ, bench, benchMemory, formatBench, parseShape } from '../src/engine/stages/bench';

beforeAll(async () => {
  await initBackend('wasm');
});

describe('parseShape', () => {
  it('reads L/H with the default heads (H/64) and FFN (4H), and explicit -A / -F', () => {
    expect(parseShape('L4-H256')).toEqual({ name: 'L4-H256', layers: 4, hidden: 256, heads: 4, ffn: 1024 });
    expect(parseShape('L2-H128-A2-F512')).toMatchObject({ layers: 2, hidden: 128, heads: 2, ffn: 512 });
    expect(() => parseShape('L2H128')).toThrow(/not a shape like L4-H256/);
    expect(() => parseShape('L2-H100-A3')).toThrow(/multiple of heads/);
  });
});

describe('bench', () => {
  it('measures train / infer throughput and the pruned speed-up of a tiny model', async () => {
    const events: EngineEvent[] = [];
    const r = await bench(
      { shapes: ['L1-H64-A4-F128'], steps: 1, torch: false },
      { emit: (e) => events.push(e), backend: backendLabel() },
    );
    expect(r.backend).toBe(backendLabel());
    expect([r.batch, r.seq, r.steps]).toEqual([BENCH_BATCH, BENCH_SEQ, 1]);
    const s = r.shapes[0];
    expect(s).toMatchObject({ name: 'L1-H64-A4-F128', layers: 1, hidden: 64, heads: 4, ffn: 128 });
    for (const v of [
      s.train_tokens_per_s,
      s.infer_tokens_per_s,
      s.ms_per_train_batch,
      s.ms_per_infer_batch,
      s.peak_rss_mb,
    ])
      expect(v).toBeGreaterThan(0);
    expect(s.train_tokens_per_s).toBeCloseTo((BENCH_BATCH * BENCH_SEQ * 1000) / s.ms_per_train_batch, 6);
    expect(r.pruned).toMatchObject({ name: 'L1-H64-A4-F128', heads_kept: 1, ffn_kept: 32 });
    expect(r.pruned.speedup).toBeCloseTo(r.pruned.unpruned_ms_per_infer_batch / r.pruned.pruned_ms_per_infer_batch, 6);
    expect(r.torch).toBeUndefined();
    expect(formatBench(r)).toMatch(/L1-H64-A4-F128[\s\S]*pruned L1-H64-A4-F128 \(1 heads, FFN 32 per layer\)/);
    expect(events.some((e) => e.type === 'log' && e.message.startsWith('bench L1-H64-A4-F128'))).toBe(true);
  });

  it('rejects bad options with a UserError', async () => {
    const ctx = { emit: () => {}, backend: 'wasm' };
    await expect(bench({ shapes: ['H128'] }, ctx)).rejects.toThrow(/--shapes/);
    await expect(bench({ steps: 0 }, ctx)).rejects.toThrow(/--steps/);
    await expect(bench({ threads: 0 }, ctx)).rejects.toThrow(/--threads/);
    await expect(bench({ lengths: '16,x' }, ctx)).rejects.toThrow(/^--lengths: 'x' is not a whole number/);
    await expect(bench({ lengths: '16,513' }, ctx)).rejects.toThrow(/^--lengths: '513' .* from 1 to 512/);
    await expect(bench({ lengths: Array(65).fill('8').join(',') }, ctx)).rejects.toThrow(/at most 64 lengths/);
    await expect(bench({ lengths: '16,24' }, ctx)).rejects.toThrow(/^bench --lengths: runs on the webgpu backend only/);
    await expect(benchMemory({}, ctx)).rejects.toThrow(/^bench --memory: runs on the webgpu backend only/);
    // BERT-base's training step does not fit the wasm heap: said before anything is allocated
    const before = tf.memory().numBytes;
    await expect(bench({ shapes: ['L2-H128', 'L12-H768-A12'], torch: false }, ctx)).rejects.toThrow(
      /^--shapes L12-H768-A12: .*needs about \d.*GiB .* but the wasm backend's 4\.0 GiB heap holds less/,
    );
    expect(tf.memory().numBytes).toBe(before);
  });
});
