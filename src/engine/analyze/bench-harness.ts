// The bench's measurements (stages/bench.ts runs them and prints the table): training and
// inference throughput of the project's own BERT on the active backend at the shapes of the speed
// issue (batch 32 x 128, all tokens real), the inference speed-up of a pruned model, and the
// PyTorch reference on the same machine.
//
// A training step is the training loop's own (train/loop.ts queueTrainStep): the batch made into
// tensors inside the step from host arrays, loss and gradients, global-norm clipping, AdamW; on
// webgpu recorded and replayed as the loop does (backend/webgpu-record.ts). Dropout is off in the
// timed steps, as in the PyTorch reference (scripts/torch_bert_bench.py), so both sides do the same
// arithmetic. Each timed window (training, inference) runs at least BENCH_MIN_STEPS steps after a
// warm-up and ends when the last step's output is read back (a device sync). On webgpu the
// counters of the timed training steps come with it: GPU programs, uploads, bind groups, buffers
// made and submits per step (counted by wrapping Dawn's device and queue) and the host's ms per
// step; and the programs of one step with dropout on, as finetune runs it, by kind.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { enginePackageRoot, trustedCodePath } from '../backend/trusted-paths';
import { gpuCounters, resetGpuCounters, webgpuActive } from '../backend/webgpu-kernels';
import { timeByKind, type PassProfile } from '../backend/webgpu-timing';
import {
  deviceBytes,
  deviceCounters,
  inferenceRecorder,
  recordingBackend,
  resetDeviceCounters,
  resetDevicePeak,
  type Recorder,
} from '../backend/webgpu-record';
import { Rng } from '../data/rng';
import { CancelledError, UserError } from '../errors';
import { bceWithLogits, classify, toInputs } from '../model/bert';
import { BertConfig, makeConfig, GAIIC_NUM_LABELS } from '../model/config';
import { queueBatchLogits } from '../model/predict';
import { disposeParams, initParams, Params } from '../model/params';
import { queueTrainStep, StepSpec, stepRecording, trainStep } from '../train/loop';
import { AdamW } from '../train/optim';

export const BENCH_BATCH = 32;
export const BENCH_SEQ = 128;
/** Timed steps by default (training and inference each), after the warm-up. */
export const BENCH_STEPS = 20;
/** Untimed steps first: the first runs op by op, the second is recorded, the third replays. */
const WARMUP = 4;
/** Steps whose loss may still be on its way back while the next are queued (as the loop). */
const LAG = 3;
/** The reference's vocabulary size (the GAIIC vocab is about this big). */
const VOCAB = 863;

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
  /**
   * webgpu only, per timed training step: programs dispatched (tfjs's, ours and replayed ones),
   * tensor data uploaded (a replay's batch arrays included), bind groups and buffers made, queue
   * submits, host ms encoding and submitting; the share of steps replayed from a recording.
   */
  gpu_programs_per_train_step?: number;
  gpu_uploads_per_train_step?: number;
  gpu_bind_groups_per_train_step?: number;
  gpu_buffers_created_per_train_step?: number;
  gpu_submits_per_train_step?: number;
  host_ms_per_train_step?: number;
  gpu_replayed_train_steps?: number;
  /** One op-by-op step with dropout on, as finetune runs it: its programs by kind. */
  gpu_programs_by_kind?: Record<string, number>;
  /**
   * webgpu, where the adapter has timestamp queries: where a replayed training step's device time
   * goes (backend/webgpu-timing.ts), the medians over PROFILE_RUNS replays of each kind; and an
   * inference batch's.
   */
  gpu_profile?: GpuProfile;
  gpu_infer_profile?: GpuProfile;
  /**
   * webgpu: the most MiB the device's buffers held at once from the model's making through the
   * warm-up (op by op, then recorded) and the timed steps (a buffer counts from its making to its
   * destroy()). With --lengths: over the steps at every length.
   */
  gpu_peak_mib?: number;
  /**
   * webgpu, with --lengths or --memory: a training step (dropout on) recorded at each of these sequence
   * lengths by one recorder, and the MiB its recordings pin: in all, the scratch slots they share,
   * and what they would pin each with scratch of its own; then what tfjs's buffer manager holds on
   * the device (the model, its pool of free buffers, the recordings' own buffers).
   */
  gpu_recorded_lengths?: number[];
  gpu_recordings_mib?: number;
  gpu_recordings_scratch_mib?: number;
  gpu_recordings_unshared_mib?: number;
  gpu_tfjs_held_mib?: number;
  /** webgpu, with --lengths or --memory: the device's MiB around each length's first two steps. */
  gpu_memory_by_length?: LengthMemory[];
}

export interface GpuProfile {
  /** The step (or batch) on the device: its first program's start to its last one's end. */
  device_us: number;
  /** Its programs' times summed, each timed alone (in a compute pass of its own). */
  programs_alone_us: number;
  programs: number;
  runs: number;
  /**
   * By program kind, the slowest first: programs, us, share of programs_alone_us, workgroups; and
   * for matmuls the TFLOP/s they ran at (2 M N K over their time).
   */
  by_kind: {
    kind: string;
    programs: number;
    us: number;
    share: number;
    workgroups: [number, number];
    tflops?: number;
  }[];
  /**
   * The slowest programs: name, what it computes (its output's shape; a matmul's M x N x K), place
   * in the step (0-based), workgroups, us; a matmul's TFLOP/s.
   */
  slowest: { name: string; detail: string; index: number; workgroups: number; us: number; tflops?: number }[];
}

/** Replays timed of each kind (whole step, each program alone) for gpu_profile. */
const PROFILE_RUNS = 3;
/** Programs listed in gpu_profile.slowest. */
const SLOWEST = 12;

/** flops in us as TFLOP/s (3 significant digits); absent where none were counted or no time. */
function tflops(flops: number, us: number): { tflops?: number } {
  return flops > 0 && us > 0 ? { tflops: Number((flops / us / 1e6).toPrecision(3)) } : {};
}

/** A PassProfile as bench reports it. */
export function gpuProfile(p: PassProfile): GpuProfile {
  const round = (v: number) => Math.round(v * 10) / 10;
  return {
    device_us: round(p.deviceUs),
    programs_alone_us: round(p.programs.reduce((a, x) => a + x.us, 0)),
    programs: p.programs.length,
    runs: p.runs,
    by_kind: timeByKind(p).map((k) => ({
      kind: k.kind,
      programs: k.programs,
      us: round(k.us),
      share: Math.round(k.share * 1000) / 1000,
      workgroups: [k.minWorkgroups, k.maxWorkgroups],
      ...tflops(k.flops, k.us),
    })),
    slowest: [...p.programs]
      .sort((a, b) => b.us - a.us)
      .slice(0, SLOWEST)
      .map(({ name, detail, index, workgroups, us, flops }) => ({
        name,
        detail,
        index,
        workgroups,
        us: round(us),
        ...tflops(flops, us),
      })),
  };
}

/**
 * A profile in a line (what: 'training step', 'inference batch'): its device time, its programs
 * alone, the slowest kinds.
 */
export function formatGpuProfile(name: string, what: string, g: GpuProfile, kinds = 8): string {
  const top = g.by_kind
    .slice(0, kinds)
    .map((k) => {
      const rate = k.tflops === undefined ? '' : `, ${k.tflops} TFLOP/s`;
      return `${k.kind} ${(100 * k.share).toFixed(0)}% (${k.programs}, ${k.us.toFixed(0)} us${rate})`;
    })
    .join(', ');
  return (
    `bench ${name}: a replayed ${what} on the device ${g.device_us.toFixed(0)} us; ` +
    `its ${g.programs} programs alone ${g.programs_alone_us.toFixed(0)} us (timestamps, median of ${g.runs}): ${top}`
  );
}

/**
 * The profile of a recorder's replays over 2 * PROFILE_RUNS passes that pass() runs and awaits;
 * null where there is none (no timestamp queries, nothing replayed, or the device found the
 * profile's passes wrong: said in a line, and the bench goes on).
 */
async function profile(
  recorder: Recorder | undefined,
  pass: () => Promise<void>,
  say: (line: string) => void,
): Promise<GpuProfile | null> {
  if (!recorder?.profileReplays()) return null;
  for (let i = 0; i < 2 * PROFILE_RUNS; i++) await pass();
  try {
    const p = await recorder.profileResult();
    return p && gpuProfile(p);
  } catch (e) {
    say(`no GPU profile (${(e as Error).message})`);
    return null;
  }
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

export function benchConfig(s: BenchShape): BertConfig {
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

/** The bench's batch on the host, as the training loop's are: made into tensors inside the step. */
export interface HostBatch {
  ids: Int32Array;
  mask: Float32Array;
  labels: Float32Array;
  B: number;
  T: number;
}

/** A random batch of B x T real tokens and multi-hot labels, on the host. */
function randomHostBatch(cfg: BertConfig, seed: number, B = BENCH_BATCH, T = BENCH_SEQ): HostBatch {
  const rng = new Rng(seed);
  const n = B * T;
  const ids = new Int32Array(n).map(() => 5 + rng.int(cfg.vocab_size - 5));
  const labels = new Float32Array(B * GAIIC_NUM_LABELS).map(() => (rng.next() > 0.9 ? 1 : 0));
  return { B, T, ids, mask: new Float32Array(n).fill(1), labels };
}

/** The training loop's step (train/loop.ts) on the classifier's loss; dropout as the config says. */
function stepSpec(params: Params, cfg: BertConfig, dropoutOn: boolean): StepSpec<HostBatch> {
  return {
    params,
    clipNorm: 1.0,
    loss: (b, rng) =>
      bceWithLogits(
        classify(params, cfg, toInputs(b.ids, b.mask, b.B, b.T), { dropout: dropoutOn ? rng : null }),
        tf.tensor2d(b.labels, [b.B, GAIIC_NUM_LABELS]),
      ),
  };
}

/**
 * Mean ms of one inference batch (the stages' own path, model/predict.ts queueBatchLogits): warmup
 * batches, then `steps` queued, the window ending when the last one's logits are read back.
 */
export async function inferMs(params: Params, cfg: BertConfig, b: HostBatch, steps: number, warmup = WARMUP) {
  for (let i = 0; i < warmup; i++) await (await queueBatchLogits(params, cfg, b)).logits;
  const t0 = performance.now();
  const pending: Promise<Float32Array>[] = [];
  for (let i = 0; i < steps; i++) {
    pending.push((await queueBatchLogits(params, cfg, b)).logits);
    if (pending.length > LAG) await pending.shift();
  }
  await Promise.all(pending);
  return (performance.now() - t0) / steps;
}

/**
 * GPU programs and uploads of one training step as `finetune` runs it (webgpu only): dropout on,
 * the batch made from host arrays inside the step, op by op. The first step compiles the programs
 * and makes the optimizer's moments; the second is counted.
 */
export async function countTrainStep(
  s: Pick<BenchShape, 'layers' | 'hidden' | 'heads' | 'ffn'>,
  B = BENCH_BATCH,
  T = BENCH_SEQ,
): Promise<{ programs: number; uploads: number; byProgram: Record<string, number> }> {
  return withBenchModel(s, true, async ({ cfg, opt, spec }) => {
    const host = randomHostBatch(cfg, 5, B, T);
    await trainStep(spec, opt, host, new Rng(7), 1e-4);
    resetGpuCounters();
    await trainStep(spec, opt, host, new Rng(7), 1e-4);
    return gpuCounters();
  });
}

interface BenchModel {
  cfg: BertConfig;
  params: Params;
  opt: AdamW;
  spec: StepSpec<HostBatch>;
}

/**
 * fn on a bench model of shape s (a classifier, seed 1), its AdamW and training step, all disposed
 * after it. dropout: 0.1, as finetune trains; else none (benchConfig's), as in the PyTorch
 * reference's timed steps (model.eval()).
 */
async function withBenchModel<T>(
  s: Pick<BenchShape, 'layers' | 'hidden' | 'heads' | 'ffn'>,
  dropout: boolean,
  fn: (m: BenchModel) => Promise<T>,
): Promise<T> {
  const base = benchConfig({ name: '', ...s });
  const cfg = dropout ? { ...base, hidden_dropout_prob: 0.1, attention_probs_dropout_prob: 0.1 } : base;
  const params = initParams(cfg, { mlm: false, classifier: true, seed: 1 });
  const opt = new AdamW({ lr: 1e-4, weightDecay: 0.01 });
  const spec = stepSpec(params, cfg, dropout);
  try {
    return await fn({ cfg, params, opt, spec });
  } finally {
    spec.lossScale?.dispose();
    opt.dispose();
    disposeParams(params);
  }
}

function peakRssMb(): number {
  return process.resourceUsage().maxRSS / 1024; // maxRSS is in KiB
}

export interface BenchEnv {
  signal?: AbortSignal;
  log: (message: string) => void;
}

/** Training and inference throughput of one shape (and on webgpu the counters of its steps). */
export async function benchShape(s: BenchShape, steps: number, env: BenchEnv): Promise<ShapeResult> {
  // Dropout off in the timed steps, as in the PyTorch reference (model.eval()).
  return withBenchModel(s, false, (m) => timeShape(s, steps, env, m));
}

async function timeShape(s: BenchShape, steps: number, env: BenchEnv, m: BenchModel): Promise<ShapeResult> {
  const { cfg, params, opt, spec } = m;
  const batch = randomHostBatch(cfg, 2);
  const tokens = BENCH_BATCH * BENCH_SEQ;
  const rec = stepRecording(spec, opt, env.log);
  const rng = new Rng(1);
  const check = (loss: number) => {
    if (!Number.isFinite(loss)) throw new Error(`bench ${s.name}: the loss became ${loss}`);
  };
  try {
    resetDevicePeak();
    for (let i = 0; i < WARMUP; i++) check(await trainStep(spec, opt, batch, rng, 1e-4, rec));
    const gpu = webgpuActive();
    if (gpu) {
      resetGpuCounters();
      resetDeviceCounters();
    }
    const t0 = performance.now();
    const pending: Promise<number>[] = [];
    for (let i = 0; i < steps; i++) {
      if (env.signal?.aborted) throw new CancelledError('bench cancelled');
      pending.push((await queueTrainStep(spec, opt, batch, rng, 1e-4, rec)).loss);
      if (pending.length > LAG) check(await pending.shift()!);
      await new Promise((r) => setImmediate(r)); // let a cancel in, as the loop does
    }
    for (const p of pending) check(await p); // the window ends with the last step's loss read back
    const trainMs = (performance.now() - t0) / steps;
    const peak = deviceBytes().peak;
    const g = gpu ? gpuCounters() : null;
    const d = gpu ? deviceCounters() : null;
    const say = (line: string) => env.log(`bench ${s.name}: ${line}`);
    const trainProfile = await profile(
      rec?.recorder,
      async () => check(await trainStep(spec, opt, batch, rng, 1e-4, rec)),
      say,
    );
    if (rec) env.log(`bench ${s.name}: ${rec.recorder.summary()}`);
    rec?.recorder.dispose();
    const infer = await inferMs(params, cfg, batch, steps);
    const inferProfile = gpu
      ? await profile(
          inferenceRecorder(params)?.recorder,
          async () => {
            await (
              await queueBatchLogits(params, cfg, batch)
            ).logits;
          },
          say,
        )
      : null;
    const byKind = gpu ? await countTrainStep(s) : null;
    const per = (n: number) => n / steps;
    const r: ShapeResult = {
      ...s,
      train_tokens_per_s: (tokens * 1000) / trainMs,
      infer_tokens_per_s: (tokens * 1000) / infer,
      ms_per_train_batch: trainMs,
      ms_per_infer_batch: infer,
      peak_rss_mb: peakRssMb(),
      ...(g && d && byKind
        ? {
            gpu_programs_per_train_step: per(g.programs + d.replayedPrograms),
            gpu_uploads_per_train_step: per(g.uploads + d.replayedUploads),
            gpu_bind_groups_per_train_step: per(d.bindGroups),
            gpu_buffers_created_per_train_step: per(d.buffersCreated),
            gpu_submits_per_train_step: per(d.submits),
            host_ms_per_train_step: per(d.hostMs),
            gpu_replayed_train_steps: per(d.replayed),
            gpu_programs_by_kind: byKind.byProgram,
            ...(trainProfile ? { gpu_profile: trainProfile } : {}),
            ...(inferProfile ? { gpu_infer_profile: inferProfile } : {}),
            gpu_peak_mib: peak / 2 ** 20,
          }
        : {}),
    };
    const f = (v: number | undefined, digits = 1) => (v ?? 0).toFixed(digits);
    const counted =
      r.gpu_programs_per_train_step === undefined
        ? ''
        : `; per training step: ${f(r.gpu_programs_per_train_step, 0)} GPU programs, ` +
          `${f(r.gpu_uploads_per_train_step)} uploads, ${f(r.gpu_bind_groups_per_train_step)} bind groups, ` +
          `${f(r.gpu_buffers_created_per_train_step)} buffers made, ${f(r.gpu_submits_per_train_step)} submits, ` +
          `${f(r.host_ms_per_train_step, 2)} host ms; ${f(100 * (r.gpu_replayed_train_steps ?? 0), 0)}% replayed; ` +
          `the device held at most ${f(r.gpu_peak_mib)} MiB`;
    env.log(
      `bench ${s.name}: train ${r.train_tokens_per_s.toFixed(0)} tok/s (${trainMs.toFixed(0)} ms/batch), ` +
        `infer ${r.infer_tokens_per_s.toFixed(0)} tok/s (${infer.toFixed(0)} ms/batch)${counted}`,
    );
    if (r.gpu_profile) env.log(formatGpuProfile(s.name, 'training step', r.gpu_profile));
    if (r.gpu_infer_profile) env.log(formatGpuProfile(s.name, 'inference batch', r.gpu_infer_profile));
    return r;
  } finally {
    rec?.recorder.dispose();
  }
}

/** webgpu, bench --lengths / --memory: the device's MiB around one sequence length's first two steps. */
export interface LengthMemory {
  tokens: number;
  /** The most the device's buffers held at once during the length's first step (op by op on tfjs). */
  op_by_op_peak_mib: number;
  /** The same during its second step (run op by op again and captured into a recording). */
  capture_peak_mib: number;
  /** What they hold after it: the model, its AdamW moments, tfjs's pool and the recordings. */
  held_mib: number;
}

export type RecordingMemory = Required<
  Pick<
    ShapeResult,
    | 'gpu_recorded_lengths'
    | 'gpu_recordings_mib'
    | 'gpu_recordings_scratch_mib'
    | 'gpu_recordings_unshared_mib'
    | 'gpu_tfjs_held_mib'
    | 'gpu_peak_mib'
    | 'gpu_memory_by_length'
  >
>;

/**
 * What a training run's recordings pin (webgpu): one recorder, a training step with dropout on (as
 * the stages train) at each sequence length in turn, run and then recorded, as a run meets new
 * lengths; the recorder's MiB, and the device's around each length's two steps (the model's making
 * is before the first).
 */
export async function benchRecordingMemory(s: BenchShape, lengths: number[], env: BenchEnv): Promise<RecordingMemory> {
  return withBenchModel(s, true, async ({ cfg, opt, spec }) => {
    const rec = stepRecording(spec, opt, env.log);
    const rng = new Rng(1);
    const mib = (n: number) => n / 2 ** 20;
    try {
      if (!rec) throw new Error('bench --lengths: steps are not recorded here (webgpu, BERT_PRUNER_RECORD)');
      const byLength: LengthMemory[] = [];
      let peak = 0;
      for (const [i, T] of lengths.entries()) {
        const b = randomHostBatch(cfg, 10 + i, BENCH_BATCH, T);
        const peaks: number[] = [];
        for (let k = 0; k < 2; k++) {
          if (env.signal?.aborted) throw new CancelledError('bench cancelled');
          resetDevicePeak();
          await trainStep(spec, opt, b, rng, 1e-4, rec);
          peaks.push(deviceBytes().peak);
        }
        peak = Math.max(peak, ...peaks);
        const row = {
          tokens: T,
          op_by_op_peak_mib: mib(peaks[0]),
          capture_peak_mib: mib(peaks[1]),
          held_mib: mib(deviceBytes().now),
        };
        byLength.push(row);
        env.log(
          `bench ${s.name}: ${BENCH_BATCH} x ${T} tokens: the device held at most ` +
            `${row.op_by_op_peak_mib.toFixed(1)} MiB op by op, ${row.capture_peak_mib.toFixed(1)} MiB ` +
            `capturing, ${row.held_mib.toFixed(1)} MiB after`,
        );
      }
      const m = rec.recorder.memory();
      const r = {
        gpu_recorded_lengths: lengths,
        gpu_recordings_mib: mib(m.own + m.scratch),
        gpu_recordings_scratch_mib: mib(m.scratch),
        gpu_recordings_unshared_mib: mib(m.unshared),
        gpu_tfjs_held_mib: mib(recordingBackend()?.bufferManager.numBytesAllocated ?? 0),
        gpu_peak_mib: mib(peak),
        gpu_memory_by_length: byLength,
      };
      env.log(
        `bench ${s.name}: a training step recorded at ${lengths.length} lengths (${BENCH_BATCH} rows): ` +
          `${r.gpu_recordings_mib.toFixed(1)} MiB pinned, ` +
          `${r.gpu_recordings_scratch_mib.toFixed(1)} of it scratch shared ` +
          `(${r.gpu_recordings_unshared_mib.toFixed(1)} MiB with scratch of their own); ` +
          `tfjs holds ${r.gpu_tfjs_held_mib.toFixed(1)} MiB on the device, ` +
          `which held at most ${r.gpu_peak_mib.toFixed(1)} MiB; ${rec.recorder.summary()}`,
      );
      return r;
    } finally {
      rec?.recorder.dispose();
    }
  });
}

export interface PrunedResult {
  name: string;
  heads_kept: number;
  ffn_kept: number;
  unpruned_ms_per_infer_batch: number;
  pruned_ms_per_infer_batch: number;
  /** unpruned / pruned latency. */
  speedup: number;
}

/**
 * Inference latency of the unpruned and the pruned model, timed alternately batch by batch so that
 * both see the same machine load (other processes on a shared machine come and go).
 */
export async function benchPruned(s: BenchShape, steps: number, keep: number): Promise<PrunedResult> {
  const full = benchConfig(s);
  const small = prunedConfig(full, keep);
  const models = [full, small].map((cfg, i) => ({
    cfg,
    params: initParams(cfg, { mlm: false, classifier: true, seed: 3 + i }),
    batch: randomHostBatch(cfg, 4),
  }));
  try {
    const ms = [0, 0];
    for (let i = -WARMUP; i < steps; i++) {
      for (const [j, m] of models.entries()) {
        const t = await inferMs(m.params, m.cfg, m.batch, 1, 0);
        if (i >= 0) ms[j] += t / steps; // the first rounds warm up
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
      inferenceRecorder(m.params)?.recorder.dispose();
      disposeParams(m.params);
    }
  }
}

/** The PyTorch reference script: scripts/torch_bert_bench.py in the engine's package (trusted-paths.ts). */
export function torchScript(): string | null {
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
export function torchPython(): { python: string; version: string } | { skipped: string } {
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

export function runTorch(
  s: BenchShape,
  python: string,
  script: string,
  threads: number,
): { train: number; infer: number } {
  const args = [script, s.layers, s.hidden, s.heads, s.ffn, BENCH_BATCH, BENCH_SEQ, threads].map(String);
  const r = spawnSync(python, [...PYTHON_ISOLATED, ...args], { encoding: 'utf8', maxBuffer: 1 << 20, cwd: fixedCwd() });
  const m = /train_tokens_per_s=([\d.]+) infer_tokens_per_s=([\d.]+)/.exec(r.stdout ?? '');
  if (r.status !== 0 || !m)
    throw new Error(`PyTorch reference failed for ${s.name}: ${(r.stderr || r.stdout || '').trim().split('\n').pop()}`);
  return { train: Number(m[1]), infer: Number(m[2]) };
}
