// Fixes to the tfjs wasm backend, registered over its own kernels when it is selected.
//
// 1. BatchMatMul with transposeA / transposeB runs 10-20x slower on wasm than a plain matmul, and
//    the gradient of every dense layer (dW = x^T dy, dx = dy W^T) uses exactly those flags. We
//    transpose the operand explicitly (a fast memory shuffle) and run the plain kernel.
// 2. wasm has no UnsortedSegmentSum, which is the gradient of `gather` (embedding lookups). We add
//    a plain loop over the wasm heap.
//
// 3. wasm's Identity (which tfjs-core runs to keep every tensor saved for the backward pass) and its
//    Cast to the same dtype (every Multiply gradient casts) copy the whole tensor. Tensors are
//    immutable, so we share the data instead, as the cpu backend does (a reference count).
//    ~10% of an L4-H256 training step.
// 4. When the native addon is built (native.ts), BatchMatMul runs on OpenBLAS's sgemm instead,
//    reading the inputs and writing the output in place in the wasm heap. Transposes are CBLAS
//    flags and batch broadcasting is an index per output matrix, so nothing is copied.
//
//    The addon's other kernels (Sum, GatherV2, UnsortedSegmentSum, Exp, Erf) are registered by
//    native-kernels.ts.
//
// All are exact: the gradient-check tests run on the patched backend, and speed-matmul.test.ts /
// speed-kernels.test.ts compare the native kernels with the cpu backend's.
import * as tf from '@tensorflow/tfjs';
import { loadNative, NativeAddon } from './native';
import { registerNativeKernels, type WasmBackend } from './native-kernels';

type Info = tf.TensorInfo;

let patched = false;
let nativeMatMul = false;

/** Whether BatchMatMul on wasm runs on the native OpenBLAS kernel. */
export function usesNativeMatMul(): boolean {
  return nativeMatMul;
}

/**
 * For every output matrix of a batched matmul, the flat batch index into a and into b, following
 * numpy broadcasting of the outer dims (right-aligned; a dim of 1 repeats).
 */
export function broadcastIndices(
  outerA: number[],
  outerB: number[],
): { outer: number[]; a: Int32Array; b: Int32Array } {
  const rank = Math.max(outerA.length, outerB.length);
  const pad = (s: number[]) => [...Array(rank - s.length).fill(1), ...s];
  const da = pad(outerA);
  const db = pad(outerB);
  const outer = da.map((d, i) => {
    if (d !== db[i] && d !== 1 && db[i] !== 1)
      throw new Error(`matMul: batch dims [${outerA}] and [${outerB}] do not broadcast`);
    return Math.max(d, db[i]);
  });
  const n = outer.reduce((p, d) => p * d, 1);
  const ia = new Int32Array(n);
  const ib = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    // Unravel i over `outer`, ravel again over a's and b's own dims.
    let rest = i;
    let pa = 0;
    let pb = 0;
    let sa = 1;
    let sb = 1;
    for (let d = rank - 1; d >= 0; d--) {
      const c = rest % outer[d];
      rest = (rest - c) / outer[d];
      if (da[d] !== 1) pa += c * sa;
      if (db[d] !== 1) pb += c * sb;
      sa *= da[d];
      sb *= db[d];
    }
    ia[i] = pa;
    ib[i] = pb;
  }
  return { outer, a: ia, b: ib };
}

/** BatchMatMul on OpenBLAS, in place on the wasm heap. */
function nativeBatchMatMul(addon: NativeAddon, fallback: tf.KernelFunc): tf.KernelFunc {
  return ({ inputs, backend, attrs }) => {
    const { a, b } = inputs as { a: Info; b: Info };
    const { transposeA, transposeB } = attrs as { transposeA: boolean; transposeB: boolean };
    if (a.dtype !== 'float32' || b.dtype !== 'float32') return fallback({ inputs, backend, attrs });
    const ra = a.shape.length;
    const rb = b.shape.length;
    const M = transposeA ? a.shape[ra - 1] : a.shape[ra - 2];
    const K = transposeA ? a.shape[ra - 2] : a.shape[ra - 1];
    const Kb = transposeB ? b.shape[rb - 1] : b.shape[rb - 2];
    const N = transposeB ? b.shape[rb - 2] : b.shape[rb - 1];
    if (K !== Kb)
      throw new Error(
        `matMul: inner dims ${K} and ${Kb} of shapes [${a.shape}] and [${b.shape}] ` +
          `(transposeA=${transposeA}, transposeB=${transposeB}) differ`,
      );
    const idx = broadcastIndices(a.shape.slice(0, -2), b.shape.slice(0, -2));
    const wb = backend as unknown as WasmBackend;
    const out = wb.makeOutput([...idx.outer, M, N], 'float32');
    // Views after makeOutput: allocating may grow (and so replace) the wasm memory buffer.
    const o = wb.typedArrayFromHeap(out) as Float32Array;
    addon.sgemm(
      wb.typedArrayFromHeap(a) as Float32Array,
      wb.typedArrayFromHeap(b) as Float32Array,
      o,
      idx.a,
      idx.b,
      M,
      N,
      K,
      !!transposeA,
      !!transposeB,
    );
    return out;
  };
}

export function patchWasmKernels(): void {
  if (patched) return;
  patched = true;
  const original = tf.getKernel('BatchMatMul', 'wasm');
  const transpose = tf.getKernel('Transpose', 'wasm');
  if (!original || !transpose) return;

  const swapLast = (x: Info, backend: unknown): Info => {
    const r = x.shape.length;
    const perm = [...Array(r).keys()];
    perm[r - 2] = r - 1;
    perm[r - 1] = r - 2;
    return transpose.kernelFunc({ inputs: { x }, backend: backend as tf.KernelBackend, attrs: { perm } }) as Info;
  };

  const viaTranspose: tf.KernelFunc = ({ inputs, backend, attrs }) => {
    const { a, b } = inputs as { a: Info; b: Info };
    const { transposeA, transposeB } = attrs as { transposeA: boolean; transposeB: boolean };
    if (!transposeA && !transposeB) return original.kernelFunc({ inputs, backend, attrs });
    const wb = backend as unknown as WasmBackend;
    const a2 = transposeA ? swapLast(a, backend) : a;
    const b2 = transposeB ? swapLast(b, backend) : b;
    const out = original.kernelFunc({
      inputs: { a: a2, b: b2 },
      backend,
      attrs: { ...attrs, transposeA: false, transposeB: false },
    });
    if (a2 !== a) wb.disposeData(a2.dataId);
    if (b2 !== b) wb.disposeData(b2.dataId);
    return out;
  };
  const share = (x: Info, backend: unknown): Info => {
    (backend as WasmBackend).incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
  };
  tf.unregisterKernel('Identity', 'wasm');
  tf.registerKernel({
    kernelName: 'Identity',
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend }) => share((inputs as { x: Info }).x, backend),
  });
  const cast = tf.getKernel('Cast', 'wasm');
  if (cast) {
    tf.unregisterKernel('Cast', 'wasm');
    tf.registerKernel({
      ...cast,
      kernelFunc: (args) => {
        const { x } = args.inputs as { x: Info };
        return x.dtype === (args.attrs as { dtype: tf.DataType }).dtype
          ? share(x, args.backend)
          : cast.kernelFunc(args);
      },
    });
  }

  const addon = loadNative();
  nativeMatMul = !!addon;
  tf.unregisterKernel('BatchMatMul', 'wasm');
  tf.registerKernel({
    kernelName: 'BatchMatMul',
    backendName: 'wasm',
    kernelFunc: addon ? nativeBatchMatMul(addon, viaTranspose) : viaTranspose,
  });

  if (!tf.getKernel('UnsortedSegmentSum', 'wasm')) {
    tf.registerKernel({
      kernelName: 'UnsortedSegmentSum',
      backendName: 'wasm',
      kernelFunc: ({ inputs, backend, attrs }) => {
        const { x, segmentIds } = inputs as { x: Info; segmentIds: Info };
        const { numSegments } = attrs as unknown as { numSegments: number };
        const wb = backend as unknown as WasmBackend;
        const idRank = segmentIds.shape.length;
        const inner = x.shape.slice(idRank).reduce((p, d) => p * d, 1);
        const outShape = [numSegments, ...x.shape.slice(idRank)];
        const out = wb.makeOutput(outShape, x.dtype);
        const o = wb.typedArrayFromHeap(out);
        o.fill(0);
        const xs = wb.typedArrayFromHeap(x);
        const ids = wb.typedArrayFromHeap(segmentIds);
        for (let i = 0; i < ids.length; i++) {
          const s = ids[i];
          if (s < 0 || s >= numSegments) continue;
          const src = i * inner;
          const dst = s * inner;
          for (let j = 0; j < inner; j++) o[dst + j] += xs[src + j];
        }
        return out;
      },
    });
  }
  if (addon) registerNativeKernels(addon);
}
