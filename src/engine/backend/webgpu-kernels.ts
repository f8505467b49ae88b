// What the engine adds to tfjs's WebGPU backend when it is selected:
// - counters of the GPU programs it runs and of the tensor data it uploads (bench reports them per
//   training step);
// - scalars kept on the device: every JS number in an op (tf.mul(x, 0.5), and the constants of
//   tfjs's own gradients) is a one-element tensor that tfjs-webgpu would upload each time; here
//   each distinct value is uploaded once and shared;
// - our own compute passes (dispatchRaw) in tfjs's command stream: the fused ops (webgpu-ops.ts)
//   and the kernels that update tensors in place (the fused AdamW, webgpu-adamw.ts).
//
// These reach into tfjs-backend-webgpu's WebGPUBackend (its tensorMap, buffer manager, command
// encoder: WebGpuBackendLike below), which is not a public API: package.json pins 4.22.0, and
// test/webgpu-ops.test.ts is what tells whether another version still fits.
import * as tf from '@tensorflow/tfjs';
import { captureUpload, nameDispatch, wrapDevice } from './webgpu-record';
import { boundPool } from './webgpu-pool';
import type { TensorData, WebGpuBackendLike } from './webgpu-types';

export type { WebGpuBackendLike } from './webgpu-types';

export interface GpuCounters {
  /** Compute programs dispatched (tfjs's and ours). */
  programs: number;
  /** Tensor data copied from the CPU to the GPU (uniform buffers are not counted). */
  uploads: number;
  /** programs by the program's class name, for profiles. */
  byProgram: Record<string, number>;
}

const counters: GpuCounters = { programs: 0, uploads: 0, byProgram: {} };

export function gpuCounters(): GpuCounters {
  return { ...counters, byProgram: { ...counters.byProgram } };
}

export function resetGpuCounters(): void {
  counters.programs = 0;
  counters.uploads = 0;
  counters.byProgram = {};
}

/** A program's detail for profiles from its output's shape: '4096x128', 'scalar'. */
export function shapeDetail(shape: number[]): string {
  return shape.join('x') || 'scalar';
}

/**
 * Count one program run (our own dispatches call this too), and name its dispatch for a capture:
 * its name, and what it computes (detail: its output's shape, a matmul's M x N x K) for profiles.
 */
function countProgram(name: string, detail: string, flops = 0): void {
  nameDispatch(name, detail, flops);
  counters.programs++;
  counters.byProgram[name] = (counters.byProgram[name] ?? 0) + 1;
}

/* eslint-disable @typescript-eslint/no-explicit-any -- WebGPU's types are not in our tsconfig */
type GPUBuffer = any;
type GPUComputePipeline = any;
declare const GPUBufferUsage: { STORAGE: number; COPY_SRC: number; COPY_DST: number; UNIFORM: number };

let patched: WebGpuBackendLike | null = null;

/** The webgpu backend when it is the active one (our kernels are used only then). */
function activeWebGpu(): WebGpuBackendLike | null {
  return patched && tf.getBackend() === 'webgpu' ? patched : null;
}

/** Whether the webgpu backend is the active one: the layers, AdamW and EMA take our kernels then. */
export function webgpuActive(): boolean {
  return activeWebGpu() !== null;
}

/** The active webgpu backend; `who` names the caller in the error where another one is active. */
export function requireWebGpu(who: string): WebGpuBackendLike {
  const b = activeWebGpu();
  if (!b) throw new Error(`${who}: the webgpu backend is not active`);
  return b;
}

/** Threads per workgroup of our kernels. */
export const WG = 256;
/** Grid-stride loops: at most this many workgroups in x (the limit is 65535). */
const MAX_GROUPS = 8192;

/** A grid-stride dispatch for n items, perGroup a workgroup. */
export function gridGroups(n: number, perGroup = WG): [number, number, number] {
  return [Math.max(1, Math.min(MAX_GROUPS, Math.ceil(n / perGroup))), 1, 1];
}

/** A uniform field of our kernels: its WGSL name and type (4 bytes each) and its value. */
export type UniformField = [name: string, type: 'u32' | 'f32', value: number];

/**
 * The one way our kernels pack their uniforms (webgpu-ops.ts, webgpu-adamw.ts): `fields` in order,
 * then, where given, one record per slot (`slots`, the same names in each, at most 4) as
 * `slots: array<Slot, k>`, 16-byte aligned as WGSL's uniform layout asks (the fields are padded to
 * a multiple of 4 words before it, each record to 4). Returns the WGSL structs (Slot, U) and the
 * bytes; the WGSL depends only on the names, types and the number of slots.
 */
export function uniformBlock(fields: UniformField[], slots?: UniformField[][]): { wgsl: string; data: ArrayBuffer } {
  const head = [...fields];
  const rec = slots?.[0] ?? [];
  if (rec.length > 4) throw new Error('uniformBlock: a slot holds at most 4 fields');
  if (slots) while (head.length % 4) head.push([`pad${head.length}`, 'u32', 0]);
  const recPad = [...rec];
  while (slots && recPad.length < 4) recPad.push([`pad${recPad.length}`, 'u32', 0]);
  const decl = head.map(([n, t]) => `${n}: ${t}`);
  let wgsl = '';
  if (slots) {
    wgsl = `struct Slot { ${recPad.map(([n, t]) => `${n}: ${t}`).join(', ')} };\n`;
    decl.push(`slots: array<Slot, ${slots.length}>`);
  }
  wgsl += `struct U { ${decl.join(', ')} };`;
  const words = head.length + (slots ? 4 * slots.length : 0);
  const data = new ArrayBuffer(Math.ceil((words * 4) / 16) * 16 || 16);
  const u = new Uint32Array(data);
  const f = new Float32Array(data);
  const put = (k: number, [, t, v]: UniformField) => {
    if (t === 'u32') u[k] = v;
    else f[k] = v;
  };
  head.forEach((x, k) => put(k, x));
  slots?.forEach((r, j) => r.forEach((x, i) => put(head.length + 4 * j + i, x)));
  return { wgsl, data };
}

/**
 * WGSL: a tree reduction of one f32 per thread over each run of `lanes` threads of the workgroup
 * (the whole workgroup where lanes is WG), `red` its shared memory.
 */
const reduction = (name: string, combine: string, lanes: number) => `
fn ${name}(v: f32, li: u32) -> f32 {
  red[li] = v;
  workgroupBarrier();
  let lane = li % ${lanes}u;
  for (var s = ${lanes / 2}u; s > 0u; s = s / 2u) {
    if (lane < s) { red[li] = ${combine}; }
    workgroupBarrier();
  }
  let r = red[li - lane];
  workgroupBarrier();
  return r;
}`;

/**
 * WGSL: wsum and wmax, the sum and max of one f32 per thread over each run of `lanes` threads (a
 * power of two dividing WG; every thread calls them).
 */
export const workgroupReduce = (lanes: number) => `var<workgroup> red: array<f32, ${WG}>;
${reduction('wsum', 'red[li] + red[li + s]', lanes)}
${reduction('wmax', 'max(red[li], red[li + s])', lanes)}`;

/** WGSL: wsum and wmax over the whole workgroup. */
export const WORKGROUP_REDUCE = workgroupReduce(WG);

/**
 * The threads a row kernel gives a row of width H: a power of two from 32 to WG, about H / 4 (a
 * workgroup takes WG / lanes rows: L2-H128's 4096 rows of 128 in 512 workgroups of 8 rows, where
 * one row a workgroup left half its threads idle and made 8 times the workgroups).
 */
export function rowLanes(H: number): number {
  let lanes = 32;
  while (lanes < WG && lanes * 4 < H) lanes *= 2;
  return lanes;
}

/** At most this many distinct scalar values stay on the device (a bound, not a tuning knob). */
const MAX_SCALARS = 4096;
const scalars = new Map<string, GPUBuffer>();

/** The shared device buffer of a one-element tensor's value, or null past the bound. */
function scalarBuffer(b: WebGpuBackendLike, d: TensorData): GPUBuffer | null {
  const v = Number(d.values![0]);
  const key = `${d.dtype}:${Object.is(v, -0) ? '-0' : String(v)}`;
  let buf = scalars.get(key);
  if (!buf) {
    if (scalars.size >= MAX_SCALARS) return null;
    // 16 bytes, the value four times: a vec4 read of a broadcast scalar stays in bounds.
    const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
    buf = b.device.createBuffer({ size: 16, usage, mappedAtCreation: true });
    const range = buf.getMappedRange();
    (d.dtype === 'float32' ? new Float32Array(range) : new Int32Array(range)).fill(v);
    buf.unmap();
    counters.uploads++;
    scalars.set(key, buf);
  }
  return buf;
}

export function patchWebGpuKernels(): void {
  if (patched) return;
  const b = tf.backend() as unknown as WebGpuBackendLike;
  patched = b;
  boundPool(b); // first: the recorder's wrapper (its spares) comes before the pool
  wrapDevice(b);
  // tfjs computes an op on the CPU where its inputs are small and still there (e.g. 1 - labels):
  // the result is then uploaded as new host data, which a recorded step could not follow
  // (webgpu-record.ts). Everything runs on the GPU instead.
  (b as unknown as { shouldExecuteOnCPU: () => boolean }).shouldExecuteOnCPU = () => false;
  const run = b.runWebGPUProgram.bind(b);
  b.runWebGPUProgram = (program, ...rest) => {
    if (program.outputShape.every((d) => d > 0))
      countProgram(program.constructor.name, shapeDetail(program.outputShape));
    return run(program, ...rest);
  };
  const upload = b.uploadToGPU.bind(b);
  b.uploadToGPU = (dataId) => {
    const d = b.tensorMap.get(dataId);
    if (d.resource == null && d.values != null) {
      // A recording in progress takes the batch's arrays into its own buffers (webgpu-record.ts).
      if (captureUpload(b, d)) {
        counters.uploads++;
        return;
      }
      // Rank 0 only: the constants of ops. A [1] parameter (a 1-label classifier's bias) is updated in place.
      if (d.shape.length === 0 && (d.dtype === 'float32' || d.dtype === 'int32')) {
        const buf = scalarBuffer(b, d);
        if (buf) {
          // external: tfjs does not release it with the tensor. The values stay for reads.
          d.resource = buf;
          d.external = true;
          return;
        }
      }
      counters.uploads++;
    }
    upload(dataId);
  };
}

/** The GPU buffer of a tensor, uploading it first where it is still on the CPU. */
function gpuBuffer(b: WebGpuBackendLike, t: tf.TensorInfo): GPUBuffer {
  b.uploadToGPU(t.dataId);
  return b.tensorMap.get(t.dataId).resource;
}

const pipelines = new Map<string, GPUComputePipeline>();

/** A compute pipeline from WGSL (entry point main), made once per key. */
export function pipeline(b: WebGpuBackendLike, key: string, wgsl: () => string): GPUComputePipeline {
  let p = pipelines.get(key);
  if (!p) {
    const module = b.device.createShaderModule({ code: wgsl(), label: key });
    p = b.device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' }, label: key });
    pipelines.set(key, p);
  }
  return p;
}

/** Forget a pipeline (one whose compile failed, webgpu-matmul.ts's subgroup-matrix check). */
export function dropPipeline(key: string): void {
  pipelines.delete(key);
}

/**
 * Record one dispatch of our own pipeline in tfjs's current compute pass, so that it runs in order
 * with tfjs's programs. buffers are bound at 0..n-1 and the uniform block at n. Tensors written in
 * place must be ours alone (see ownData); their CPU copies are dropped here. name and detail (what it
 * computes: its output's shape, a matmul's M x N x K) name it in the counters and profiles; flops:
 * a matmul's floating-point operations (2 M N K), for the profiles' TFLOP/s.
 */
export function dispatchRaw(
  b: WebGpuBackendLike,
  name: string,
  pipe: GPUComputePipeline,
  buffers: (GPUBuffer | { tensor: tf.TensorInfo; written?: boolean })[],
  uniform: ArrayBuffer,
  groups: [number, number, number],
  detail: string,
  flops = 0,
): void {
  const resources = buffers.map((x) => {
    if (!x || typeof x !== 'object' || !('tensor' in x)) return x;
    const buf = gpuBuffer(b, x.tensor);
    b.commandQueueOwnedIds.add(x.tensor.dataId);
    if (x.written) b.tensorMap.get(x.tensor.dataId).values = null;
    return buf;
  });
  const ub = b.bufferManager.acquireBuffer(uniform.byteLength, GPUBufferUsage.COPY_DST | GPUBufferUsage.UNIFORM);
  b.queue.writeBuffer(ub, 0, uniform, 0, uniform.byteLength);
  b.uniformPendingDisposal.push(ub);
  const bindGroup = b.device.createBindGroup({
    layout: pipe.getBindGroupLayout(0),
    entries: [...resources, ub].map((buffer, i) => ({ binding: i, resource: { buffer } })),
  });
  b.ensureCommandEncoderReady();
  if (!b.computePassEncoder) b.computePassEncoder = b.commandEncoder.beginComputePass({});
  b.computePassEncoder.setPipeline(pipe);
  b.computePassEncoder.setBindGroup(0, bindGroup);
  countProgram(name, detail, flops); // before the dispatch, which a capture names by it
  b.computePassEncoder.dispatchWorkgroups(groups[0], groups[1], groups[2]);
  b.dispatchCountInPass++;
  if (tf.env().getNumber('WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE') <= b.dispatchCountInPass) {
    b.endComputePassEncoder();
    b.submitQueue();
  }
}

/** A new f32 tensor's data of `shape` on the device, for one of our kernels to write (dispatchRaw's `written`). */
export function outputInfo(b: WebGpuBackendLike, shape: number[]): tf.TensorInfo {
  return (b as unknown as { makeTensorInfo(s: number[], d: tf.DataType): tf.TensorInfo }).makeTensorInfo(
    shape,
    'float32',
  );
}

/**
 * Make a variable's data its own (a copy where another tensor shares it, as tf.variable(t) and
 * assign(t) do, or a shared device scalar), so that writing it in place changes nothing else.
 */
export function ownData(b: WebGpuBackendLike, v: tf.Variable): void {
  const d = b.tensorMap.get(v.dataId);
  if (d.refCount <= 1 && !d.external) return;
  tf.tidy(() => v.assign(tf.add(v, tf.zerosLike(v))));
}
