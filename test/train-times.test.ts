// train()'s closing line: where a training run's time went (steps by how they ran, a teacher's
// targets, validation and checkpoints), so that a slow stage says what to look at.
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import type { EngineEvent } from '../src/engine/protocol';
import { formatStepTimes, newStepTimes, train } from '../src/engine/train/loop';
import { classifierLoss, classify, toInputs } from '../src/engine/model/bert';
import { hostBatch } from './helpers/webgpu';
import { trainSpec } from './helpers/train';
import { tinyModel } from './helpers/tiny';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const busy = (ms: number) => {
  const end = performance.now() + ms;
  while (performance.now() < end);
};

describe('formatStepTimes', () => {
  it('splits the steps by how they ran; replayed steps take what the others leave', () => {
    const t = newStepTimes();
    Object.assign(t, { totalMs: 12_300, prepareMs: 500, afterEpochMs: 1800 });
    t.replayed.steps = 368;
    t.captured = { steps: 16, ms: 1200 };
    t.opByOp = { steps: 16, ms: 800 };
    expect(formatStepTimes('finetune', 2, t)).toBe(
      'finetune: 2 epochs in 12.3 s: 400 steps 10.0 s (25.0 ms a step; 368 replayed 8.0 s, 16 captured 1.2 s, ' +
        '16 op by op 0.8 s), teacher targets 0.5 s, validation and checkpoints 1.8 s',
    );
  });

  it('without replays the op-by-op steps take the rest; nothing around them, nothing said; no step, no line', () => {
    const t = newStepTimes();
    t.totalMs = 2000;
    t.opByOp = { steps: 10, ms: 1900 };
    expect(formatStepTimes('pretrain', 1, t)).toBe(
      'pretrain: 1 epoch in 2.0 s: 10 steps 2.0 s (200.0 ms a step; 10 op by op 2.0 s)',
    );
    expect(formatStepTimes('pretrain', 1, newStepTimes())).toBeNull();
  });
});

describe('train: where the time went', () => {
  it("one line at the end: every step counted, the teacher's targets and the epochs' ends timed apart", async () => {
    tf.setBackend('cpu');
    const { cfg, params } = tinyModel(1);
    const batches = [hostBatch(5), hostBatch(6), hostBatch(7)];
    const events: EngineEvent[] = [];
    const opt = await train(
      trainSpec({
        stage: 'refinetune',
        params,
        epochs: 2,
        batches: () => batches,
        loss: (b, dropout) =>
          classifierLoss(
            classify(params, cfg, toInputs(b.ids, b.mask, b.B, b.T), { dropout }),
            tf.tensor2d(b.labels!, [b.B, 17]),
            false,
          ),
        prepare: async (b) => {
          await sleep(40);
          return b;
        },
        afterEpoch: async () => {
          busy(100); // work before its first await counts too
          await sleep(150);
          return {};
        },
        emit: (e) => events.push(e),
      }),
    );
    opt.dispose();
    for (const v of params.values()) v.dispose();
    const logs = events.flatMap((e) => (e.type === 'log' ? [e.message] : []));
    const m =
      /^refinetune: 2 epochs in ([\d.]+) s: 6 steps ([\d.]+) s \([\d.]+ ms a step; 6 op by op ([\d.]+) s\), teacher targets ([\d.]+) s, validation and checkpoints ([\d.]+) s$/.exec(
        logs.at(-1) ?? '',
      );
    expect(m, logs.at(-1)).not.toBeNull();
    const [total, steps, opByOp, teacher, after] = m!.slice(1).map(Number);
    expect(opByOp).toBe(steps);
    expect(teacher).toBeGreaterThanOrEqual(0.2); // 6 x 40 ms, rounded to 0.1 s
    expect(after).toBeGreaterThanOrEqual(0.5); // 2 x (100 + 150) ms
    expect(Math.abs(steps + teacher + after - total)).toBeLessThanOrEqual(0.15); // each rounded to 0.1 s
    // the last line comes after the last epoch's event
    const lastEpoch = events.map((e) => e.type).lastIndexOf('epoch');
    expect(events.slice(lastEpoch + 1).map((e) => e.type)).toEqual(['log']);
  });
});
