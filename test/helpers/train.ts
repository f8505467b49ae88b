// A training run's spec for tests of train() (train/loop.ts): constant lr 1e-2, no warm-up,
// weight decay 0.01, clipping at 1, seed 1, one epoch, nothing after it, events dropped;
// the test gives the model, its loss and batches, and whatever it changes.
import type { TrainSpec } from '../../src/engine/train/loop';

export function trainSpec(o: Pick<TrainSpec, 'params' | 'loss' | 'batches'> & Partial<TrainSpec>): TrainSpec {
  return {
    stage: 'finetune',
    epochs: 1,
    lr: 1e-2,
    weightDecay: 0.01,
    warmupRatio: 0,
    schedule: 'constant',
    seed: 1,
    clipNorm: 1,
    afterEpoch: async () => ({}),
    emit: () => {},
    ...o,
  };
}
