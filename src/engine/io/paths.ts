// Where a run keeps its data (the layout corpus-vocab starts). The checkpoint folders are the
// pipeline table's (stages/registry.ts: stageFolders).
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
});
