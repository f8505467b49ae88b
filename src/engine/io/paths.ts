// Where a run keeps each stage's data and checkpoints (the layout corpus-vocab starts; see README).
import * as path from 'node:path';

export const runPaths = (run: string) => ({
  train: path.join(run, 'data', 'train.csv'),
  test: path.join(run, 'data', 'test.csv'),
  corpus: path.join(run, 'corpus.txt'),
  vocab: path.join(run, 'vocab'),
  pretrain: path.join(run, 'pretrain'),
  pretrainLast: path.join(run, 'pretrain-last'),
  finetune: path.join(run, 'finetune'),
  finetuneLast: path.join(run, 'finetune-last'),
  pruned: path.join(run, 'pruned'),
  refinetune: path.join(run, 'refinetune'),
  refinetuneLast: path.join(run, 'refinetune-last'),
});
