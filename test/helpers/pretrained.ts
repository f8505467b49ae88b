// A run pretrained in-process on a small demo dataset (160 train / 20 test rows, one MLM epoch of
// a 16-wide model): the starting point of the fine-tuning tests.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { resolveSettings } from '../../src/engine/config/settings';
import { writeDemo } from '../../src/engine/data/demo';
import { openRun } from '../../src/engine/io/run';
import { corpusVocab } from '../../src/engine/data/corpus';
import { pretrain } from '../../src/engine/train/pretrain';
import { stageFolders } from '../../src/engine/stages/registry';

/** The model those tests fine-tune (a settings `model` override of the tiny preset). */
export const SMALL_MODEL = { hidden_size: 16, num_attention_heads: 2, intermediate_size: 32, max_len: 32 };

export async function pretrainedRun(
  prefix: string,
  dataSeed: number,
  backend: string,
): Promise<{ root: string; run: string }> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  writeDemo(path.join(root, 'data'), { trainRows: 160, testRows: 20, seed: dataSeed });
  const run = path.join(root, 'run');
  openRun(run, {});
  const ctx = { backend, emit: () => {} };
  await corpusVocab({ data: path.join(root, 'data'), run, seed: 1 }, ctx);
  const { out, last } = stageFolders(run, 'pretrain') as { out: string; last: string };
  await pretrain(run, resolveSettings('tiny', { model: SMALL_MODEL, pretrain: { epochs: 1 } }), ctx, { out, last });
  return { root, run };
}
