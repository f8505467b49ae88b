// The native addon's other kernels, registered over the wasm backend's own when the addon loads.
// Each one replaces a kernel that a training step's profile showed slow on wasm (2 cores, batch
// 32 x 128, L2-H128): Sum over rows (bias and LayerNorm gradients: wasm transposes first, ~50 ms
// for [4096, 512]), GatherV2 of embedding rows (~45 ms for 4096 rows), their gradient
// UnsortedSegmentSum, and Exp / Erf (scalar libm in wasm, ~15-30 ns a value; GELU and its gradient).
// Then (4 layers, hidden 128, batch 32 x 48) the elementwise Add, Sub, Multiply and RealDiv over
// the broadcasts a BERT step makes. The fused layers (GELU, dropout, AdamW) are ops, in native-ops.ts.
// Anything outside the fast cases (other dtypes, other axes) goes to the kernel registered before.
// speed-kernels.test.ts compares each with the cpu backend.
import * as tf from '@tensorflow/tfjs';
import type { NativeAddon } from './native';

type Info = tf.TensorInfo;
/** The wasm backend's public surface used here, by wasm-kernels.ts and by native-ops.ts (BackendWasm). */
export interface WasmBackend {
  makeOutput(shape: number[], dtype: tf.DataType): Info;
  typedArrayFromHeap(t: Info): Float32Array | Int32Array | Uint8Array;
  incRef(dataId: object): void;
  refCount(dataId: object): number;
  disposeData(dataId: object): boolean;
}

const size = (shape: number[]) => shape.reduce((p, d) => p * d, 1);

/** Replace kernelName on wasm by `fast`, which returns null to hand over to the previous kernel. */
function override(
  kernelName: string,
  fast: (args: { inputs: tf.NamedTensorInfoMap; backend: WasmBackend; attrs: tf.NamedAttrMap }) => Info | null,
): void {
  const prev = tf.getKernel(kernelName, 'wasm');
  if (prev) tf.unregisterKernel(kernelName, 'wasm');
  tf.registerKernel({
    kernelName,
    backendName: 'wasm',
    setupFunc: prev?.setupFunc,
    kernelFunc: (args) => {
      const r = fast({ inputs: args.inputs, backend: args.backend as unknown as WasmBackend, attrs: args.attrs ?? {} });
      if (r) return r;
      if (!prev) throw new Error(`${kernelName}: no wasm kernel for these inputs`);
      return prev.kernelFunc(args);
    },
  });
}

/**
 * The axes of a Sum as one block [first, last] of x's dims, or null when they are not contiguous
 * (those go to wasm's own Sum).
 */
export function sumBlock(
  shape: number[],
  axis: number | number[],
): { P: number; R: number; C: number; outShape: number[]; keptShape: number[] } | null {
  const axes = [...new Set(tf.util.parseAxisParam(axis, shape))].sort((a, b) => a - b);
  if (axes.length === 0) return null;
  const first = axes[0];
  const last = axes[axes.length - 1];
  if (last - first !== axes.length - 1) return null;
  return {
    P: size(shape.slice(0, first)),
    R: size(shape.slice(first, last + 1)),
    C: size(shape.slice(last + 1)),
    outShape: shape.filter((_, i) => i < first || i > last),
    keptShape: shape.map((d, i) => (i < first || i > last ? d : 1)),
  };
}

/** How each operand of a binary op spans the output as [rows, cols] (native binary's modes). */
export interface BinaryPlan {
  rows: number;
  cols: number;
  a: 0 | 1 | 2;
  b: 0 | 1 | 2;
}

const FULL = 0;
const ROW = 1;
const COL = 2;

/**
 * The native plan for a op b broadcast to `out`, or null where the broadcast is another kind (an
 * outer product, a middle axis): operands of out's size are FULL; a scalar is a COL of one row; an
 * operand whose shape is out's trailing dims (leading 1s) a ROW, its leading dims (trailing 1s) a COL.
 */
export function binaryPlan(aShape: number[], bShape: number[], out: number[]): BinaryPlan | null {
  const n = size(out);
  const sa = size(aShape);
  const sb = size(bShape);
  if (n === 0) return null;
  if (sa === n && sb === n) return { rows: 1, cols: n, a: FULL, b: FULL };
  const partial = sa === n ? bShape : sb === n ? aShape : null;
  if (!partial) return null;
  const k = size(partial);
  let mode: 1 | 2 | null = null;
  let rows = 1;
  if (k === 1) mode = COL;
  else {
    const p = [...Array(out.length - partial.length).fill(1), ...partial];
    const firstReal = p.findIndex((d) => d !== 1);
    const lastReal = p.length - 1 - [...p].reverse().findIndex((d) => d !== 1);
    const matches = (from: number, to: number) => p.slice(from, to).every((d, i) => d === out[from + i]);
    if (matches(firstReal, p.length) && p.slice(0, firstReal).every((d) => d === 1)) mode = ROW;
    else if (matches(0, lastReal + 1)) {
      mode = COL;
      rows = k;
    }
  }
  if (mode === null) return null;
  if (mode === ROW) rows = n / k;
  const cols = n / rows;
  return sa === n ? { rows, cols, a: FULL, b: mode } : { rows, cols, a: mode, b: FULL };
}

export function registerNativeKernels(addon: NativeAddon): void {
  override('Sum', ({ inputs, backend, attrs }) => {
    const { x } = inputs as { x: Info };
    const { axis, keepDims } = attrs as unknown as { axis: number | number[]; keepDims: boolean };
    if (x.dtype !== 'float32') return null;
    const b = sumBlock(x.shape, axis);
    if (!b) return null;
    const out = backend.makeOutput(keepDims ? b.keptShape : b.outShape, 'float32');
    addon.reduceSum(
      backend.typedArrayFromHeap(x) as Float32Array,
      backend.typedArrayFromHeap(out) as Float32Array,
      b.P,
      b.R,
      b.C,
    );
    return out;
  });

  override('GatherV2', ({ inputs, backend, attrs }) => {
    const { x, indices } = inputs as { x: Info; indices: Info };
    const { axis, batchDims } = attrs as unknown as { axis: number; batchDims: number };
    if (x.dtype !== 'float32' || indices.dtype !== 'int32' || (batchDims ?? 0) !== 0 || x.shape.length < 1) return null;
    if (tf.util.parseAxisParam(axis, x.shape)[0] !== 0) return null;
    const inner = size(x.shape.slice(1));
    if (inner === 0) return null;
    const out = backend.makeOutput([...indices.shape, ...x.shape.slice(1)], 'float32');
    addon.gatherRows(
      backend.typedArrayFromHeap(x) as Float32Array,
      backend.typedArrayFromHeap(indices) as Int32Array,
      backend.typedArrayFromHeap(out) as Float32Array,
      inner,
    );
    return out;
  });

  override('UnsortedSegmentSum', ({ inputs, backend, attrs }) => {
    const { x, segmentIds } = inputs as { x: Info; segmentIds: Info };
    const { numSegments } = attrs as unknown as { numSegments: number };
    if (x.dtype !== 'float32' || segmentIds.dtype !== 'int32') return null;
    const tail = x.shape.slice(segmentIds.shape.length);
    const inner = size(tail);
    if (inner === 0) return null;
    const out = backend.makeOutput([numSegments, ...tail], 'float32');
    addon.segmentSum(
      backend.typedArrayFromHeap(x) as Float32Array,
      backend.typedArrayFromHeap(segmentIds) as Int32Array,
      backend.typedArrayFromHeap(out) as Float32Array,
      inner,
    );
    return out;
  });

  for (const [name, op] of [
    ['Exp', 0],
    ['Erf', 1],
  ] as const) {
    override(name, ({ inputs, backend }) => {
      const { x } = inputs as { x: Info };
      if (x.dtype !== 'float32') return null;
      const out = backend.makeOutput(x.shape, 'float32');
      addon.unary(op, backend.typedArrayFromHeap(x) as Float32Array, backend.typedArrayFromHeap(out) as Float32Array);
      return out;
    });
  }

  for (const [name, op] of [
    ['Add', 0],
    ['Sub', 1],
    ['Multiply', 2],
    ['RealDiv', 3],
  ] as const) {
    override(name, ({ inputs, backend }) => {
      const { a, b } = inputs as { a: Info; b: Info };
      if (a.dtype !== 'float32' || b.dtype !== 'float32') return null;
      const shape = tf.backend_util.assertAndGetBroadcastShape(a.shape, b.shape);
      const plan = binaryPlan(a.shape, b.shape, shape);
      if (!plan) return null;
      const out = backend.makeOutput(shape, 'float32');
      const heap = (t: Info) => backend.typedArrayFromHeap(t) as Float32Array;
      addon.binary(op, heap(a), plan.a, heap(b), plan.b, heap(out), plan.rows, plan.cols);
      return out;
    });
  }
}
