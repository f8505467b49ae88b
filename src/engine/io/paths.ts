// Where a run keeps each stage's data and checkpoints (the layout corpus-vocab starts; see README).
import * as fs from 'node:fs';
import * as path from 'node:path';

/** The run's data file: data/NAME.jsonl when corpus-vocab made one (raw text), else data/NAME.csv (GAIIC). */
const dataFile = (run: string, name: string) => {
  const jsonl = path.join(run, 'data', `${name}.jsonl`);
  return fs.existsSync(jsonl) ? jsonl : path.join(run, 'data', `${name}.csv`);
};

export const runPaths = (run: string) => ({
  train: dataFile(run, 'train'),
  test: dataFile(run, 'test'),
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
