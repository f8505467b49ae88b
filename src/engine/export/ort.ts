// onnxruntime-node, loaded only when asked for: it is a development dependency (tests, `bench
// --onnx`, the int8 metric of `export`), not shipped in the packaged extension. Its CPU runtime is
// in its npm tarball (bin/napi-v6/<platform>/<arch>), so nothing is downloaded.
import { UserError } from '../errors';

// The types only: erased at build time, so the bundle never requires the package by itself.
export type Ort = typeof import('onnxruntime-node');

export const ORT_MISSING =
  'onnxruntime-node is not installed (it is a development dependency: run npm ci in a clone of bert-pruner)';

/** onnxruntime-node, or null where it is not installed (the packaged extension). `req`: for tests. */
export function loadOrt(req: (id: string) => unknown = require): Ort | null {
  try {
    // A plain require esbuild leaves alone (onnxruntime-node is external): resolved at run time.
    return req('onnxruntime-node') as Ort;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'MODULE_NOT_FOUND' || code === 'ERR_DLOPEN_FAILED') return null;
    throw e;
  }
}

/** onnxruntime-node, or a UserError saying it is missing. */
export function requireOrt(req?: (id: string) => unknown): Ort {
  const ort = loadOrt(req);
  if (!ort) throw new UserError(ORT_MISSING);
  return ort;
}

/**
 * A session on an ONNX model's bytes: all graph optimizations, `threads` intra-op threads. Its
 * threads do not spin between runs (ONNX Runtime's default busy-waits, which would take the cores
 * from whatever runs next: the engine's own timing in `bench --onnx`).
 */
export async function ortSession(ort: Ort, model: Uint8Array | string, threads?: number) {
  return ort.InferenceSession.create(model as Uint8Array, {
    graphOptimizationLevel: 'all',
    executionProviders: ['cpu'],
    executionMode: 'sequential',
    ...(threads ? { intraOpNumThreads: threads, interOpNumThreads: 1 } : {}),
    extra: { session: { intra_op: { allow_spinning: '0' } } },
  });
}

/** Logits [B * L] of one padded batch (ids, mask, types: [B * T] each). */
export async function ortLogits(
  ort: Ort,
  session: Awaited<ReturnType<typeof ortSession>>,
  ids: ArrayLike<number>,
  mask: ArrayLike<number>,
  types: ArrayLike<number> | null,
  B: number,
  T: number,
): Promise<Float32Array> {
  const t = (a: ArrayLike<number> | null) =>
    new ort.Tensor('int64', BigInt64Array.from(Array.from(a ?? new Int32Array(B * T), (x) => BigInt(x))), [B, T]);
  const out = await session.run({ input_ids: t(ids), attention_mask: t(mask), token_type_ids: t(types) });
  return out.logits.data as Float32Array;
}
