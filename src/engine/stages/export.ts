// export: a classifier checkpoint as an ONNX model for ONNX Runtime (+ tokenizer.json, labels.json),
// fp32 or int8; the work is export/export.ts. With a labeled file (--data, or the run's test file
// when the checkpoint lives in a run) and onnxruntime-node installed, the export is scored against
// the checkpoint on it.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserError } from '../errors';
import { exportCheckpoint, type ExportResult } from '../export/export';
import { loadOrt, ORT_MISSING } from '../export/ort';
import { checkReplaceable } from '../io/ownership';
import { existing, notInput } from './checks';
import { log } from './context';
import type { StageRun } from './registry';

const mb = (b: number) => (b / 1e6).toFixed(2);

/** The labeled test file of the run a checkpoint lives in (RUN/<stage>), if any. */
function runTestFile(model: string): string | undefined {
  const run = path.dirname(path.resolve(model));
  if (!fs.existsSync(path.join(run, 'run.json'))) return undefined;
  return ['test.csv', 'test.jsonl'].map((f) => path.join(run, 'data', f)).find((f) => fs.existsSync(f));
}

export function formatExport(r: ExportResult): string {
  const lines = [`wrote ${r.file} (${r.quantization === 'none' ? 'fp32' : r.quantization}, ${mb(r.bytes)} MB)`];
  if (r.fp32_bytes)
    lines.push(
      `  size: ${mb(r.bytes)} MB vs ${mb(r.fp32_bytes)} MB fp32 (${((100 * r.bytes) / r.fp32_bytes).toFixed(1)}%)`,
    );
  const tok = r.tokenizer.source === 'built' ? 'built from vocab.txt' : "the checkpoint's";
  lines.push(`  tokenizer.json: ${tok}, ${r.tokenizer.checked_tokens} tokens checked with @huggingface/tokenizers`);
  lines.push(`  labels.json: ${r.labels} labels, ${r.problem_type}`);
  const c = r.comparison;
  if (c)
    lines.push(
      `  on ${c.data} (${c.rows} rows): score ${c.score_export} vs checkpoint ${c.score_checkpoint} ` +
        `(${c.score_delta >= 0 ? '+' : ''}${c.score_delta}), max probability difference ${c.max_prob_diff}, ` +
        `${(100 * c.same_decisions).toFixed(2)}% same decisions`,
    );
  return lines.join('\n');
}

export const runExport: StageRun<'export'> = async ({ args, ctx }) => {
  const format = args.format ?? 'onnx';
  if (format !== 'onnx') throw new UserError(`--format ${format}: not supported (onnx is)`);
  const quantize = args.quantize;
  if (quantize !== undefined && quantize !== 'int8')
    throw new UserError(`--quantize ${quantize}: not supported (int8 is; leave it out for fp32)`);
  existing(args.model, 'checkpoint folder');
  notInput(args.out, args.model, '--out', '--model');
  checkReplaceable(args.out, 'export', { force: args.force, flag: '--out' });
  const data = args.data ?? runTestFile(args.model);
  if (args.data) existing(args.data, 'data file');
  const ort = data ? loadOrt() : null;
  if (data && !ort) log(ctx, `${ORT_MISSING}; the export is not scored on ${data}`, 'warn');
  const r = await exportCheckpoint(args.model, args.out, { quantize, data, ort });
  return { result: r, text: args.json ? JSON.stringify(r, null, 2) : formatExport(r) };
};
