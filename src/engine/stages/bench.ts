// bench: training and inference throughput of the project's own BERT on the active backend, at the
// shapes of the speed issue (batch 32 x 128 tokens), against PyTorch on the same machine when
// Debian's python3 has torch; and the inference speed-up of a pruned model (1/4 of the heads and
// of the FFN kept) over the unpruned one.
//
// A training step is the training loop's own (train/loop.ts trainStep): loss and gradients,
// global-norm clipping, AdamW. Dropout is off in the timed steps, as in the PyTorch reference
// (scripts/torch_bert_bench.py), so both sides do the same arithmetic. All tokens are real (no
// padding), as in the reference. On webgpu, one more step with dropout on, as finetune runs it,
// is counted: GPU programs and uploads per training step.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { nativeStatus, setBlasThreads } from '../backend/native';
import { enginePackageRoot, trustedCodePath } from '../backend/trusted-paths';
import { Rng } from '../data/rng';
import { CancelledError, UserError } from '../errors';
import { cpuModel, recordSpeeds, SpeedEntry } from '../backend/speeds';
import { gpuCounters, resetGpuCounters, webgpuActive } from '../backend/webgpu-kernels';
import { matmulKind } from '../backend/webgpu-ops';
import { bceWithLogits, classify, Inputs, toInputs } from '../model/bert';
import { BertConfig, makeConfig, GAIIC_NUM_LABELS } from '../model/config';
import { checkMemory } from '../model/memory';
import { batchLogits } from '../model/predict';
import { disposeParams, initParams, Params } from '../model/params';
import { StepSpec, trainStep } from '../train/loop';
import { AdamW } from '../train/optim';
import { log, StageContext } from './context';
import type { StageRun } from './registry';

export const BENCH_BATCH = 32;
export const BENCH_SEQ = 128;
/** The reference's vocabulary size (the GAIIC vocab is about this big). */
const VOCAB = 863;
const DEFAULT_SHAPES = ['L4-H256', 'L2-H128'];

export interface BenchShape {
  name: string;
  layers: number;
  hidden: number;
  heads: number;
  ffn: number;
}

export interface ShapeResult extends BenchShape {
  train_tokens_per_s: number;
  infer_tokens_per_s: number;
  ms_per_train_batch: number;
  ms_per_infer_batch: number;
  /** The process's peak resident memory so far (it includes the shapes measured before). */
  peak_rss_mb: number;
  /** webgpu only: programs dispatched and tensors uploaded in one training step (dropout on). */
  gpu_programs_per_train_step?: number;
  gpu_uploads_per_train_step?: number;
  gpu_programs_by_kind?: Record<string, number>;
}

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
  /** webgpu: whose matmul the dense layers ran on ('tfjs', or 'tiled': ours, see webgpu-ops.ts). */
  webgpu_matmul?: 'tfjs' | 'tiled';
  blas?: string;
  blas_threads?: number;
  batch: number;
  seq: number;
  steps: number;
  shapes: ShapeResult[];
  pruned: {
    name: string;
    heads_kept: number;
    ffn_kept: number;
    unpruned_ms_per_infer_batch: number;
    pruned_ms_per_infer_batch: number;
    /** unpruned / pruned latency. */
    speedup: number;
  };
  torch?: { version: string; threads: number; shapes: TorchResult[] } | { skipped: string };
}

/** "L4-H256" -> 4 layers, hidden 256, heads hidden/64, FFN 4*hidden; "-A2" / "-F512" override those. */
export function parseShape(name: string): BenchShape {
  const m = /^L(\d+)-H(\d+)(?:-A(\d+))?(?:-F(\d+))?$/.exec(name);
  if (!m) throw new UserError(`--shapes: '${name}' is not a shape like L4-H256 or L2-H128-A2-F512`);
  const layers = Number(m[1]);
  const hidden = Number(m[2]);
  const heads = m[3] ? Number(m[3]) : Math.max(1, Math.round(hidden / 64));
  const ffn = m[4] ? Number(m[4]) : 4 * hidden;
  if (layers < 1 || hidden < 1 || heads < 1 || ffn < 1 || hidden % heads !== 0) {
    throw new UserError(
      `--shapes: '${name}': layers, hidden, heads and FFN must be positive and hidden a multiple of heads`,
    );
  }
  return { name, layers, hidden, heads, ffn };
}

function benchConfig(s: BenchShape): BertConfig {
  return makeConfig(
    {
      hidden_size: s.hidden,
      num_hidden_layers: s.layers,
      num_attention_heads: s.heads,
      intermediate_size: s.ffn,
      max_position_embeddings: 512,
      max_len: BENCH_SEQ,
      hidden_dropout_prob: 0,
      attention_probs_dropout_prob: 0,
      initializer_range: 0.02,
    },
    VOCAB,
    'classification',
  );
}

/** The same config with only `keep` of the heads and of the FFN neurons left in every layer. */
function prunedConfig(cfg: BertConfig, keep: number): BertConfig {
  const heads = Math.max(1, Math.round(cfg.num_attention_heads * keep));
  const ffn = Math.max(1, Math.round(cfg.intermediate_size * keep));
  const removed = [...Array(cfg.num_attention_heads).keys()].slice(heads);
  const pruned_heads: Record<string, number[]> = {};
  for (let l = 0; l < cfg.num_hidden_layers; l++) pruned_heads[String(l)] = removed;
  return { ...cfg, pruned_heads, intermediate_sizes: Array(cfg.num_hidden_layers).fill(ffn) };
}

/** A random batch of B x T real tokens and multi-hot labels, on the host. */
function randomHostBatch(cfg: BertConfig, seed: number, B = BENCH_BATCH, T = BENCH_SEQ) {
  const rng = new Rng(seed);
  const n = B * T;
  const ids = new Int32Array(n).map(() => 5 + rng.int(cfg.vocab_size - 5));
  const y = new Float32Array(B * GAIIC_NUM_LABELS).map(() => (rng.next() > 0.9 ? 1 : 0));
  return { B, T, ids, mask: new Float32Array(n).fill(1), y };
}

/** The host batch as tensors (an upload on a GPU). */
function deviceBatch(h: ReturnType<typeof randomHostBatch>): BenchBatch {
  return { inp: toInputs(h.ids, h.mask, h.B, h.T), y: tf.tensor2d(h.y, [h.B, GAIIC_NUM_LABELS]) };
}

interface BenchBatch {
  inp: Inputs;
  y: tf.Tensor2D;
}

/** The training loop's step (train/loop.ts) on the classifier's loss; dropout as the config says. */
function stepSpec(params: Params, cfg: BertConfig, dropoutOn: boolean): StepSpec<BenchBatch> {
  return {
    params,
    clipNorm: 1.0,
    loss: (b, rng) => bceWithLogits(classify(params, cfg, b.inp, { dropout: dropoutOn ? rng : null }), b.y),
  };
}

/** Mean ms of one inference forward pass (logits read back; nothing big returned from tidy). */
async function inferMs(params: Params, cfg: BertConfig, inp: Inputs, steps: number, warmup = 2): Promise<number> {
  const once = () => batchLogits(params, cfg, () => inp);
  for (let i = 0; i < warmup; i++) await once();
  const t0 = performance.now();
  for (let i = 0; i < steps; i++) await once();
  return (performance.now() - t0) / steps;
}

/**
 * GPU programs and uploads of one training step as `finetune` runs it (webgpu only): dropout on,
 * the batch made from host arrays inside the step, as the training loop's batches are. The first
 * step compiles the programs and makes the optimizer's moments; the second is counted.
 */
export async function countTrainStep(
  s: Pick<BenchShape, 'layers' | 'hidden' | 'heads' | 'ffn'>,
  B = BENCH_BATCH,
  T = BENCH_SEQ,
): Promise<{ programs: number; uploads: number; byProgram: Record<string, number> }> {
  const cfg = { ...benchConfig({ name: '', ...s }), hidden_dropout_prob: 0.1, attention_probs_dropout_prob: 0.1 };
  const params = initParams(cfg, { mlm: false, classifier: true, seed: 1 });
  const opt = new AdamW({ lr: 1e-4, weightDecay: 0.01 });
  const host = randomHostBatch(cfg, 5, B, T);
  const spec = stepSpec(params, cfg, true);
  const once = async () => {
    const b = deviceBatch(host);
    await trainStep(spec, opt, b, new Rng(7), 1e-4);
    tf.dispose([b.inp.ids, b.inp.mask, b.y]);
  };
  try {
    await once();
    resetGpuCounters();
    await once();
    return gpuCounters();
  } finally {
    opt.dispose();
    disposeParams(params);
  }
}

function peakRssMb(): number {
  return process.resourceUsage().maxRSS / 1024; // maxRSS is in KiB
}

async function benchShape(s: BenchShape, steps: number, ctx: StageContext): Promise<ShapeResult> {
  const cfg = benchConfig(s);
  const params = initParams(cfg, { mlm: false, classifier: true, seed: 1 });
  const opt = new AdamW({ lr: 1e-4, weightDecay: 0.01 });
  const batch = deviceBatch(randomHostBatch(cfg, 2));
  const { inp, y } = batch;
  const tokens = BENCH_BATCH * BENCH_SEQ;
  // Dropout off in the timed steps, as in the PyTorch reference (model.eval()).
  const spec = stepSpec(params, cfg, false);
  const rng = new Rng(1);
  try {
    for (let i = 0; i < 2; i++) await trainStep(spec, opt, batch, rng, 1e-4); // warm-up: kernel setup, moments
    const t0 = performance.now();
    for (let i = 0; i < steps; i++) {
      if (ctx.signal?.aborted) throw new CancelledError('bench cancelled');
      const loss = await trainStep(spec, opt, batch, rng, 1e-4);
      if (!Number.isFinite(loss)) throw new Error(`bench ${s.name}: the loss became ${loss}`);
      await new Promise((r) => setImmediate(r)); // let a cancel in
    }
    const trainMs = (performance.now() - t0) / steps;
    const infer = await inferMs(params, cfg, inp, steps);
    const gpu = webgpuActive() ? await countTrainStep(s) : null;
    const r: ShapeResult = {
      ...s,
      train_tokens_per_s: (tokens * 1000) / trainMs,
      infer_tokens_per_s: (tokens * 1000) / infer,
      ms_per_train_batch: trainMs,
      ms_per_infer_batch: infer,
      peak_rss_mb: peakRssMb(),
      ...(gpu
        ? {
            gpu_programs_per_train_step: gpu.programs,
            gpu_uploads_per_train_step: gpu.uploads,
            gpu_programs_by_kind: gpu.byProgram,
          }
        : {}),
    };
    log(
      ctx,
      `bench ${s.name}: train ${r.train_tokens_per_s.toFixed(0)} tok/s (${trainMs.toFixed(0)} ms/batch), ` +
        `infer ${r.infer_tokens_per_s.toFixed(0)} tok/s (${infer.toFixed(0)} ms/batch)` +
        (gpu ? `; ${gpu.programs} GPU programs and ${gpu.uploads} uploads per training step` : ''),
    );
    return r;
  } finally {
    opt.dispose();
    disposeParams(params);
    tf.dispose([inp.ids, inp.mask, y]);
  }
}

/**
 * Inference latency of the unpruned and the pruned model, timed alternately batch by batch so that
 * both see the same machine load (other processes on a shared machine come and go).
 */
async function benchPruned(s: BenchShape, steps: number, keep: number): Promise<BenchResult['pruned']> {
  const full = benchConfig(s);
  const small = prunedConfig(full, keep);
  const models = [full, small].map((cfg, i) => ({
    cfg,
    params: initParams(cfg, { mlm: false, classifier: true, seed: 3 + i }),
    ...deviceBatch(randomHostBatch(cfg, 4)),
  }));
  try {
    const ms = [0, 0];
    for (let i = -2; i < steps; i++) {
      for (const [j, m] of models.entries()) {
        const t = await inferMs(m.params, m.cfg, m.inp, 1, 0);
        if (i >= 0) ms[j] += t / steps; // the first two rounds warm up
      }
    }
    return {
      name: s.name,
      heads_kept: small.num_attention_heads - small.pruned_heads['0'].length,
      ffn_kept: small.intermediate_sizes![0],
      unpruned_ms_per_infer_batch: ms[0],
      pruned_ms_per_infer_batch: ms[1],
      speedup: ms[0] / ms[1],
    };
  } finally {
    for (const m of models) {
      disposeParams(m.params);
      tf.dispose([m.inp.ids, m.inp.mask, m.y]);
    }
  }
}

/** The PyTorch reference script: scripts/torch_bert_bench.py in the engine's package (trusted-paths.ts). */
function torchScript(): string | null {
  // From the engine's own package only, never from the cwd (a workspace's script must not be run).
  return trustedCodePath(path.join('scripts', 'torch_bert_bench.py')).file;
}

/**
 * Python never takes code from the working folder (a cloned repository's torch.py): -I (isolated
 * mode) leaves the current and the script's folder off sys.path and ignores PYTHONPATH, PYTHONHOME
 * and the user's site-packages; and the child runs in a folder of ours, not the workspace.
 */
const PYTHON_ISOLATED = ['-I'];
function fixedCwd(): string {
  return enginePackageRoot() ?? os.tmpdir();
}

/** Debian's python3 (not a pyenv shim that comes first on PATH) when it has torch. */
function torchPython(): { python: string; version: string } | { skipped: string } {
  const python = process.env.BERT_PRUNER_TORCH_PYTHON ?? '/usr/bin/python3';
  if (!path.isAbsolute(python)) return { skipped: `BERT_PRUNER_TORCH_PYTHON='${python}' is not an absolute path` };
  if (!fs.existsSync(python)) return { skipped: `${python} not found` };
  const r = spawnSync(python, [...PYTHON_ISOLATED, '-c', 'import torch; print(torch.__version__)'], {
    encoding: 'utf8',
    cwd: fixedCwd(),
  });
  if (r.status !== 0) return { skipped: `${python} has no torch (apt-get install -y python3-torch)` };
  return { python, version: r.stdout.trim() };
}

function runTorch(s: BenchShape, python: string, script: string, threads: number): { train: number; infer: number } {
  const args = [script, s.layers, s.hidden, s.heads, s.ffn, BENCH_BATCH, BENCH_SEQ, threads].map(String);
  const r = spawnSync(python, [...PYTHON_ISOLATED, ...args], { encoding: 'utf8', maxBuffer: 1 << 20, cwd: fixedCwd() });
  const m = /train_tokens_per_s=([\d.]+) infer_tokens_per_s=([\d.]+)/.exec(r.stdout ?? '');
  if (r.status !== 0 || !m)
    throw new Error(`PyTorch reference failed for ${s.name}: ${(r.stderr || r.stdout || '').trim().split('\n').pop()}`);
  return { train: Number(m[1]), infer: Number(m[2]) };
}

/**
 * o.threads: OpenBLAS threads for this run (default: BERT_PRUNER_BLAS_THREADS, else all cores, see
 * backend/native.ts). PyTorch runs with all cores. o.json is the caller's (it prints).
 */
export async function bench(
  o: { shapes?: string[]; json?: boolean; torch?: boolean; steps?: number; threads?: number },
  ctx: StageContext,
): Promise<BenchResult> {
  const shapes = (o.shapes?.length ? o.shapes : DEFAULT_SHAPES).map(parseShape);
  const steps = o.steps ?? 5;
  if (!Number.isInteger(steps) || steps < 1) throw new UserError(`--steps: '${o.steps}' must be a positive integer`);
  if (o.threads !== undefined) {
    if (!Number.isInteger(o.threads) || o.threads < 1)
      throw new UserError(`--threads: '${o.threads}' must be a positive integer`);
    setBlasThreads(o.threads);
  }
  const ns = nativeStatus();
  const result: BenchResult = {
    backend: ctx.backend,
    ...(webgpuActive() ? { webgpu_matmul: matmulKind() } : {}),
    ...(ns.loaded ? { blas: ns.blas, blas_threads: ns.threads } : {}),
    batch: BENCH_BATCH,
    seq: BENCH_SEQ,
    steps,
    shapes: [],
    pruned: undefined as unknown as BenchResult['pruned'],
  };
  if (!ns.loaded && ctx.backend.startsWith('wasm')) log(ctx, `native matmul not in use: ${ns.detail}`);

  // A shape that cannot train here (BERT-base at 32 x 128 on wasm: more than its 4 GiB heap) is
  // refused before anything runs, with one line, rather than dying inside the backend.
  for (const s of shapes) {
    checkMemory(benchConfig(s), { mode: 'train', batch: BENCH_BATCH, seqLen: BENCH_SEQ }, ctx.backend, {
      shape: `--shapes ${s.name}`,
    });
  }
  for (const s of shapes) result.shapes.push(await benchShape(s, steps, ctx));
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
      `${r.webgpu_matmul ? ` (${r.webgpu_matmul} matmul)` : ''}, ` +
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

export const runBench: StageRun<'bench'> = async ({ args, ctx }) => {
  // --onnx: ours against ONNX Runtime on one checkpoint (export/bench.ts).
  if (args.onnx) {
    if (!args.model) throw new UserError('bench --onnx: --model CKPT names the checkpoint to race');
    const { benchOnnx, formatOnnxBench } = await import('../export/bench');
    const r = await benchOnnx(args.model, ctx, { threads: args.threads, rounds: args.steps });
    return { result: r, text: args.json ? JSON.stringify(r, null, 2) : formatOnnxBench(r) };
  }
  const o = {
    shapes: args.shapes?.split(','),
    json: args.json,
    torch: args['no-torch'] ? false : undefined,
    steps: args.steps,
    threads: args.threads,
  };
  const r = await bench(o, ctx);
  return { result: r, text: args.json ? JSON.stringify(r, null, 2) : formatBench(r) };
};
