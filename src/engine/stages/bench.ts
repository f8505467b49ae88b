// bench: the stage. Runs the measurements of analyze/bench-harness.ts (training and inference
// throughput of the project's own BERT at the shapes of the speed issue, batch 32 x 128; the pruned
// model's inference speed-up; PyTorch on the same machine when Debian's python3 has torch), keeps
// them for `auto` (backend/speeds.ts) and prints the table.
import * as os from 'node:os';
import { nativeStatus, setBlasThreads } from '../backend/native';
import { cpuModel, recordSpeeds, SpeedEntry } from '../backend/speeds';
import { webgpuActive } from '../backend/webgpu-kernels';
import { benchMatmul, formatMatmulBench, matmulSummary } from '../backend/webgpu-matmul';
import { webgpuAdapter } from '../backend/webgpu';
import { CancelledError, UserError } from '../errors';
import { checkMemory } from '../model/memory';
import {
  BenchShape,
  BENCH_BATCH,
  BENCH_SEQ,
  BENCH_STEPS,
  benchConfig,
  benchPruned,
  benchRecordingMemory,
  benchShape,
  parseShape,
  PrunedResult,
  RecordingMemory,
  runTorch,
  ShapeResult,
  torchPython,
  torchScript,
} from '../analyze/bench-harness';
import { log, type StageContext } from '../context';
import { table } from '../format';
import type { StageRun } from './registry';

export { BENCH_BATCH, BENCH_SEQ, countTrainStep, parseShape } from '../analyze/bench-harness';
export type { BenchShape, ShapeResult } from '../analyze/bench-harness';

const DEFAULT_SHAPES = ['L4-H256', 'L2-H128'];

export interface TorchResult {
  name: string;
  train_tokens_per_s: number;
  infer_tokens_per_s: number;
  /** ours / PyTorch: >= 1 means we are at least as fast. */
  train_ratio: number;
  infer_ratio: number;
}

export interface BenchResult {
  backend: string;
  /**
   * webgpu: which matmul ran each product (webgpu-matmul.ts matmulSummary: tfjs's, ours with its
   * tile, or auto's measured choices).
   */
  webgpu_matmul?: string;
  /** mixed: f16 matmul inputs, f32 accumulation, loss scaling (webgpu); absent: fp32. */
  precision?: 'mixed';
  blas?: string;
  blas_threads?: number;
  batch: number;
  seq: number;
  steps: number;
  shapes: ShapeResult[];
  pruned: PrunedResult;
  torch?: { version: string; threads: number; shapes: TorchResult[] } | { skipped: string };
}

/**
 * o.threads: OpenBLAS threads for this run (default: BERT_PRUNER_BLAS_THREADS, else all cores, see
 * backend/native.ts). PyTorch runs with all cores. o.json is the caller's (it prints).
 */
export async function bench(
  o: { shapes?: string[]; json?: boolean; torch?: boolean; steps?: number; threads?: number; lengths?: string },
  ctx: StageContext,
): Promise<BenchResult> {
  const shapes = (o.shapes?.length ? o.shapes : DEFAULT_SHAPES).map(parseShape);
  const steps = o.steps ?? BENCH_STEPS;
  if (!Number.isInteger(steps) || steps < 1) throw new UserError(`--steps: '${o.steps}' must be a positive integer`);
  const lengths = o.lengths === undefined ? null : parseLengths(o.lengths);
  if (o.threads !== undefined) {
    if (!Number.isInteger(o.threads) || o.threads < 1)
      throw new UserError(`--threads: '${o.threads}' must be a positive integer`);
    setBlasThreads(o.threads);
  }
  const ns = nativeStatus();
  const result: BenchResult = {
    backend: ctx.backend,
    ...(webgpuActive() ? { webgpu_matmul: matmulSummary() } : {}),
    ...(ctx.precision === 'mixed' ? { precision: 'mixed' as const } : {}),
    ...(ns.loaded ? { blas: ns.blas, blas_threads: ns.threads } : {}),
    batch: BENCH_BATCH,
    seq: BENCH_SEQ,
    steps,
    shapes: [],
    pruned: undefined as unknown as PrunedResult,
  };
  if (!ns.loaded && ctx.backend.startsWith('wasm')) log(ctx, `native matmul not in use: ${ns.detail}`);

  // A shape that cannot train here (BERT-base at 32 x 128 on wasm: more than its 4 GiB heap) is
  // refused before anything runs, with one line, rather than dying inside the backend.
  for (const s of shapes) {
    checkMemory(benchConfig(s), { mode: 'train', batch: BENCH_BATCH, seqLen: BENCH_SEQ }, ctx.backend, {
      shape: `--shapes ${s.name}`,
    });
  }
  const env = { signal: ctx.signal, log: (m: string) => log(ctx, m) };
  for (const s of shapes) {
    const r = await benchShape(s, steps, env);
    result.shapes.push(lengths ? { ...r, ...(await benchRecordingMemory(s, lengths, env)) } : r);
  }
  result.pruned = await benchPruned(shapes[0], steps, 0.25);
  log(ctx, `bench pruned ${shapes[0].name} (1/4 heads and FFN): ${result.pruned.speedup.toFixed(2)}x faster inference`);

  record(result, o.threads !== undefined, ctx);

  if (o.torch !== false) {
    const py = torchPython();
    const script = torchScript();
    if ('skipped' in py || !script) {
      const why = 'skipped' in py ? py.skipped : 'scripts/torch_bert_bench.py not found';
      if (o.torch) throw new UserError(`bench --torch: ${why}`);
      result.torch = { skipped: why };
    } else {
      const threads = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
      const rows: TorchResult[] = [];
      for (const [i, s] of shapes.entries()) {
        if (ctx.signal?.aborted) throw new CancelledError('bench cancelled');
        log(ctx, `bench: PyTorch ${py.version} reference for ${s.name} (${threads} threads)`);
        const t = runTorch(s, py.python, script, threads);
        const ours = result.shapes[i];
        rows.push({
          name: s.name,
          train_tokens_per_s: t.train,
          infer_tokens_per_s: t.infer,
          train_ratio: ours.train_tokens_per_s / t.train,
          infer_ratio: ours.infer_tokens_per_s / t.infer,
        });
      }
      result.torch = { version: py.version, threads, shapes: rows };
    }
  }
  return result;
}

/**
 * Keep what was measured for `auto` (backend/speeds.ts), unless --threads made the CPU path run
 * otherwise than a stage runs it.
 */
function record(r: BenchResult, threadsGiven: boolean, ctx: StageContext): void {
  if (threadsGiven) {
    log(ctx, 'bench: --threads given, so not recorded for auto (stages run with the default threads)');
    return;
  }
  if (r.precision === 'mixed') {
    log(ctx, 'bench: precision mixed, so not recorded for auto (it weighs the fp32 speeds)');
    return;
  }
  const measured = new Date().toISOString();
  const cpu = cpuModel();
  const entries: SpeedEntry[] = r.shapes.map((s) => ({
    backend: r.backend,
    cpu,
    shape: s.name,
    size: { layers: s.layers, hidden: s.hidden, attention: s.hidden, ffn: s.ffn },
    train_tokens_per_s: s.train_tokens_per_s,
    infer_tokens_per_s: s.infer_tokens_per_s,
    measured,
  }));
  const w = recordSpeeds(entries);
  if ('problem' in w) ctx.emit({ type: 'log', level: 'warn', message: `bench: not recorded for auto: ${w.problem}` });
  else log(ctx, `bench: recorded in ${w.file}; auto compares webgpu with the CPU path by it`);
}

/** The terminal table of a bench result. */
export function formatBench(r: BenchResult): string {
  const torch = r.torch && 'shapes' in r.torch ? r.torch : null;
  const lines = [
    `backend ${r.backend}${r.blas ? ` (${r.blas}, ${r.blas_threads} threads)` : ''}` +
      `${r.webgpu_matmul ? ` (${r.webgpu_matmul} matmul)` : ''}${r.precision ? `, precision ${r.precision}` : ''}, ` +
      `batch ${r.batch} x ${r.seq} tokens, ${r.steps} timed steps`,
  ];
  const head = ['shape', 'train tok/s', 'infer tok/s', 'ms/train batch', 'ms/infer batch', 'peak RSS MB'];
  if (torch) head.push('torch train', 'torch infer', 'train ratio', 'infer ratio');
  const rows = r.shapes.map((s) => {
    const row = [
      s.name,
      s.train_tokens_per_s.toFixed(0),
      s.infer_tokens_per_s.toFixed(0),
      s.ms_per_train_batch.toFixed(0),
      s.ms_per_infer_batch.toFixed(0),
      s.peak_rss_mb.toFixed(0),
    ];
    const t = torch?.shapes.find((x) => x.name === s.name);
    if (t)
      row.push(
        t.train_tokens_per_s.toFixed(0),
        t.infer_tokens_per_s.toFixed(0),
        `${t.train_ratio.toFixed(2)}x`,
        `${t.infer_ratio.toFixed(2)}x`,
      );
    return row;
  });
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)));
  const fmt = (row: string[]) => row.map((c, i) => c.padStart(widths[i])).join('  ');
  lines.push(fmt(head), ...rows.map(fmt));
  const p = r.pruned;
  lines.push(
    `pruned ${p.name} (${p.heads_kept} heads, FFN ${p.ffn_kept} per layer): ` +
      `${p.pruned_ms_per_infer_batch.toFixed(1)} ms vs ${p.unpruned_ms_per_infer_batch.toFixed(1)} ms ` +
      `per inference batch = ${p.speedup.toFixed(2)}x faster`,
  );
  if (r.torch && 'skipped' in r.torch) lines.push(`PyTorch reference skipped: ${r.torch.skipped}`);
  else if (torch)
    lines.push(`PyTorch ${torch.version}, ${torch.threads} threads, same shapes and machine; ratio = ours / PyTorch`);
  return lines.join('\n');
}

/** The most lengths --lengths may name, and the longest (the bench model's position table). */
const MAX_LENGTHS = 64;
const MAX_LENGTH = 512;

/** --lengths "16,24,32": sequence lengths to record a training step at (webgpu only). */
function parseLengths(text: string): number[] {
  const parts = text.split(',');
  if (parts.length > MAX_LENGTHS) throw new UserError(`--lengths: at most ${MAX_LENGTHS} lengths, not ${parts.length}`);
  const lengths = parts.map((p) => {
    const n = Number(p.trim());
    if (!/^\s*\d+\s*$/.test(p) || n < 1 || n > MAX_LENGTH)
      throw new UserError(`--lengths: '${p}' is not a whole number of tokens from 1 to ${MAX_LENGTH}`);
    return n;
  });
  if (!webgpuActive()) throw new UserError('bench --lengths: runs on the webgpu backend only (--backend webgpu)');
  return lengths;
}

export interface MemoryBenchResult {
  backend: string;
  webgpu_matmul?: string;
  precision?: 'mixed';
  batch: number;
  shapes: (BenchShape & RecordingMemory)[];
}

/**
 * bench --memory (webgpu): no timing; per shape, a training step (dropout on) at each --lengths
 * (default BENCH_SEQ) op by op and then captured, and the device's MiB at each (bench-harness.ts
 * benchRecordingMemory). Minutes per BERT-base step on lavapipe, seconds on a GPU.
 */
export async function benchMemory(
  o: { shapes?: string[]; lengths?: string },
  ctx: StageContext,
): Promise<MemoryBenchResult> {
  const shapes = (o.shapes?.length ? o.shapes : DEFAULT_SHAPES).map(parseShape);
  if (!webgpuActive()) throw new UserError('bench --memory: runs on the webgpu backend only (--backend webgpu)');
  const lengths = o.lengths === undefined ? [BENCH_SEQ] : parseLengths(o.lengths);
  for (const s of shapes)
    checkMemory(benchConfig(s), { mode: 'train', batch: BENCH_BATCH, seqLen: Math.max(...lengths) }, ctx.backend, {
      shape: `--shapes ${s.name}`,
    });
  const env = { signal: ctx.signal, log: (m: string) => log(ctx, m) };
  const result: MemoryBenchResult = {
    backend: ctx.backend,
    webgpu_matmul: matmulSummary(),
    ...(ctx.precision === 'mixed' ? { precision: 'mixed' as const } : {}),
    batch: BENCH_BATCH,
    shapes: [],
  };
  for (const s of shapes) result.shapes.push({ ...s, ...(await benchRecordingMemory(s, lengths, env)) });
  return result;
}

/** The terminal table of bench --memory: a row per shape and length. */
export function formatMemoryBench(r: MemoryBenchResult): string {
  const rows = r.shapes.flatMap((s) =>
    s.gpu_memory_by_length.map((m) => [
      s.name,
      `${r.batch} x ${m.tokens}`,
      m.op_by_op_peak_mib.toFixed(1),
      m.capture_peak_mib.toFixed(1),
      m.held_mib.toFixed(1),
    ]),
  );
  return [
    `backend ${r.backend}${r.precision ? `, precision ${r.precision}` : ''}: ` +
      "the device's buffers around a training step (dropout on) at each length, op by op and captured",
    table(['shape', 'tokens', 'op-by-op peak MiB', 'capture peak MiB', 'held after MiB'], rows),
    ...r.shapes.map(
      (s) =>
        `${s.name}: the recordings pin ${s.gpu_recordings_mib.toFixed(1)} MiB ` +
        `(${s.gpu_recordings_scratch_mib.toFixed(1)} of it shared scratch); ` +
        `at most ${s.gpu_peak_mib.toFixed(1)} MiB at once`,
    ),
  ].join('\n');
}

export const runBench: StageRun<'bench'> = async ({ args, ctx }) => {
  // --onnx: ours against ONNX Runtime on one checkpoint (export/bench.ts).
  if (args.onnx) {
    if (!args.model) throw new UserError('bench --onnx: --model CKPT names the checkpoint to race');
    const { benchOnnx, formatOnnxBench } = await import('../export/bench');
    const r = await benchOnnx(args.model, ctx, { threads: args.threads, rounds: args.steps });
    return { result: r, text: args.json ? JSON.stringify(r, null, 2) : formatOnnxBench(r) };
  }
  // --memory: the device's memory around a training step, no timing.
  if (args.memory) {
    const r = await benchMemory({ shapes: args.shapes?.split(','), lengths: args.lengths }, ctx);
    return { result: r, text: args.json ? JSON.stringify(r, null, 2) : formatMemoryBench(r) };
  }
  // --matmul: the webgpu matmul kernels alone (backend/webgpu-matmul.ts).
  if (args.matmul) {
    const a = webgpuAdapter();
    if (!webgpuActive() || !a)
      throw new UserError('bench --matmul: runs on the webgpu backend only (--backend webgpu)');
    const rows = await benchMatmul(a.software);
    const r = { backend: ctx.backend, webgpu_matmul: matmulSummary(), matmul: rows };
    return { result: r, text: args.json ? JSON.stringify(r, null, 2) : formatMatmulBench(rows, a.name) };
  }
  const o = {
    shapes: args.shapes?.split(','),
    json: args.json,
    torch: args['no-torch'] ? false : undefined,
    steps: args.steps,
    threads: args.threads,
    lengths: args.lengths,
  };
  const r = await bench(o, ctx);
  return { result: r, text: args.json ? JSON.stringify(r, null, 2) : formatBench(r) };
};
