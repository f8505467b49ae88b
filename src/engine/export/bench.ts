// `bench --onnx --model CKPT`: the engine's inference against ONNX Runtime's on the same model,
// exported in memory as fp32 and as int8, on one batch of 32 x 64 random tokens (as `analyze`
// times it), in one run. Both sides get the same threads: ONNX Runtime's intra-op threads are the
// engine's (its OpenBLAS threads where the native kernels are loaded, else 1), with every graph
// optimization on. The three are timed round by round (median of 7 after a warm-up, or of --steps
// rounds), so machine load falls on all alike.
import * as os from 'node:os';
import { Rng } from '../data/rng';
import { UserError } from '../errors';
import { nativeStatus, setBlasThreads } from '../backend/native';
import { toInputs } from '../model/bert';
import { batchLogits } from '../model/predict';
import { disposeParams } from '../model/params';
import type { StageContext } from '../context';
import { classifierCheckpoint, onnxOf } from './export';
import { ortSession, requireOrt } from './ort';

export const ONNX_BENCH_BATCH = 32;
export const ONNX_BENCH_SEQ = 64;

export interface OnnxBenchRow {
  engine: string;
  precision: 'fp32' | 'int8';
  /** The model file's size (ours: model.safetensors' weights as float32). */
  mb: number;
  ms_per_batch: number;
  sequences_per_s: number;
  /** ms of ours / ms of this row (>1: faster than ours). */
  speedup: number;
}

export interface OnnxBench {
  model: string;
  cpu: string;
  cores: number;
  backend: string;
  threads: number;
  onnxruntime: string;
  batch: number;
  seq: number;
  rounds: number;
  rows: OnnxBenchRow[];
}

export async function benchOnnx(
  model: string,
  ctx: StageContext,
  o: { threads?: number; rounds?: number } = {},
): Promise<OnnxBench> {
  const ort = requireOrt(); // before any work: one line (exit 2) where it is not installed
  if (o.threads !== undefined) setBlasThreads(o.threads);
  const ns = nativeStatus();
  const threads = ns.loaded ? (ns.threads ?? 1) : 1;
  const rounds = o.rounds ?? 7;
  if (!Number.isInteger(rounds) || rounds < 1) throw new UserError(`rounds: '${o.rounds}' must be a positive integer`);
  const ck = classifierCheckpoint(model);
  try {
    const B = ONNX_BENCH_BATCH;
    const T = Math.min(ONNX_BENCH_SEQ, ck.config.max_position_embeddings);
    const rng = new Rng(7);
    const V = ck.config.vocab_size;
    const ids = new Int32Array(B * T).map(() => 5 + rng.int(Math.max(1, V - 5)));
    const mask = new Float32Array(B * T).fill(1);
    const fp32 = onnxOf(ck);
    const int8 = onnxOf(ck, 'int8');
    const sessions = [await ortSession(ort, fp32, threads), await ortSession(ort, int8, threads)];
    const i64 = (a: ArrayLike<number>) => new ort.Tensor('int64', BigInt64Array.from(Array.from(a, BigInt)), [B, T]);
    const feeds = { input_ids: i64(ids), attention_mask: i64(mask), token_type_ids: i64(new Int32Array(B * T)) };
    const runs: (() => Promise<unknown>)[] = [
      () => batchLogits(ck.params, ck.config, () => toInputs(ids, mask, B, T)),
      ...sessions.map((s) => () => s.run(feeds)),
    ];
    const time = async (f: () => Promise<unknown>) => {
      const t0 = performance.now();
      await f();
      return performance.now() - t0;
    };
    for (const f of runs) await time(f); // warm-up
    const times = runs.map(() => [] as number[]);
    for (let r = 0; r < rounds; r++) for (const [i, f] of runs.entries()) times[i].push(await time(f));
    for (const s of sessions) await s.release();
    const median = times.map((t) => t.sort((a, b) => a - b)[Math.floor(rounds / 2)]);
    const weightsMb = [...ck.params.values()].reduce((a, v) => a + v.size * 4, 0) / 1e6;
    const mbs = [weightsMb, fp32.length / 1e6, int8.length / 1e6];
    const names: [string, 'fp32' | 'int8'][] = [
      [`bert-pruner (${ctx.backend})`, 'fp32'],
      ['ONNX Runtime', 'fp32'],
      ['ONNX Runtime', 'int8'],
    ];
    const r3 = (x: number) => +x.toPrecision(3);
    return {
      model,
      cpu: os.cpus()[0]?.model.trim() ?? 'unknown',
      cores: os.cpus().length,
      backend: ctx.backend,
      threads,
      onnxruntime: ort.env.versions?.node ?? 'unknown',
      batch: B,
      seq: T,
      rounds,
      rows: names.map(([engine, precision], i) => ({
        engine,
        precision,
        mb: r3(mbs[i]),
        ms_per_batch: r3(median[i]),
        sequences_per_s: r3((B * 1000) / median[i]),
        speedup: r3(median[0] / median[i]),
      })),
    };
  } finally {
    disposeParams(ck.params);
  }
}

export function formatOnnxBench(r: OnnxBench): string {
  const head = `${r.model}: batch ${r.batch} x ${r.seq}, ${r.threads} thread(s), median of ${r.rounds}; ${r.cpu}`;
  const cols = ['engine', 'weights', 'MB', 'ms/batch', 'seq/s', 'vs ours'];
  const rows = r.rows.map((x) => [x.engine, x.precision, x.mb, x.ms_per_batch, x.sequences_per_s, `${x.speedup}x`]);
  const w = cols.map((c, i) => Math.max(c.length, ...rows.map((row) => String(row[i]).length)));
  const line = (cells: unknown[]) => cells.map((c, i) => String(c).padEnd(w[i])).join('  ');
  const faster = r.rows.filter((x) => x.speedup > 1 && !x.engine.startsWith('bert-pruner'));
  const by = faster.map((x) => `${x.precision} ${x.speedup}x`).join(', ');
  const verdict = faster.length
    ? `ONNX Runtime is faster than our ${r.backend} path here: ${by}`
    : `our ${r.backend} path is as fast as ONNX Runtime or faster here`;
  return [head, line(cols), ...rows.map(line), verdict].join('\n');
}
