// Recorded passes on the webgpu backend: a training step (or an inference batch) is captured once
// from tfjs's own dispatches and then replayed as one command buffer, so that the host pays for
// tfjs's op machinery, uniform buffers and bind groups once per (model shape, batch shape), not
// once per step. docs/gpu.md tells the design; in short:
//
// - Counting: the GPUDevice and its queue that Dawn gives tfjs are wrapped (createBindGroup,
//   createBuffer, submit, writeBuffer), so bench's counters count what really reaches Dawn.
// - Recording: while a real step runs, every compute pass's (pipeline, bind group, workgroups)
//   and every buffer-to-buffer copy is kept, in order. Every buffer a kept bind group names is
//   pinned: when tfjs releases it, it does not go back to tfjs's pool, so nothing else ever
//   writes it, and its contents (the uniforms tfjs wrote once) stay. The step's scratch buffers
//   (written by its programs before they are read) may serve the step again once given back (a
//   new life of the buffer), and move to places in a few buffers all recorders' recordings
//   share (webgpu-scratch.ts), given up for room to a step run op by op (webgpu-pool.ts). The
//   batch's arrays (ids, mask, labels, ...) are uploaded into buffers of the recording's own;
//   the per-step numbers (learning rate, bias corrections, EMA decay, dropout seeds) are read by
//   our kernels from one small storage buffer (stepScalars below), written once per step. The
//   weights, AdamW moments and EMA weights are updated in place by our kernels, so their buffers
//   do not change; a recording checks that before every replay.
// - Replay: write the batch and the scalars, encode the kept dispatches into one command encoder,
//   copy the output (the loss, or the logits) into a read-back buffer of a small ring, submit
//   once; the read-back resolves later, without a stall per step.
// - A bounded LRU cache of recordings per recorder, keyed by the model's shapes and the batch's
//   array lengths; a key is recorded the second time it is seen (the first step of a shape warms
//   pipelines and makes the optimizer's moments). What cannot be recorded runs on tfjs as before,
//   with one log line naming why.
import * as tf from '@tensorflow/tfjs';
import type { WebGpuBackendLike } from './webgpu-types';
import {
  allowEvictions,
  bufferKey,
  countBuffer,
  evictableBytes,
  makeRoom,
  registerEvictable,
  setExtraIdle,
} from './webgpu-pool';
import { Arena, type ScratchUse, type Tenant } from './webgpu-scratch';
import { PassProfiler, type PassProfile, type PassTiming, type TimedDispatch } from './webgpu-timing';

export { deviceBytes, resetDevicePeak, resetHighWaterMark } from './webgpu-pool';

/* eslint-disable @typescript-eslint/no-explicit-any -- WebGPU's types are not in our tsconfig */
type GPUBuffer = any;
declare const GPUBufferUsage: {
  STORAGE: number;
  COPY_SRC: number;
  COPY_DST: number;
  MAP_READ: number;
  MAP_WRITE: number;
  UNIFORM: number;
};
declare const GPUMapMode: { READ: number };

// ---------------------------------------------------------------------------------------------
// Counters of what reaches Dawn.

export interface DeviceCounters {
  bindGroups: number;
  buffersCreated: number;
  submits: number;
  /** queue.writeBuffer calls (uniforms, scalars, a replay's batch). */
  writes: number;
  /**
   * Host time of training steps, ms: op by op from the step's start to its loss read-back's
   * start; a replay's writes, encoding and submit.
   */
  hostMs: number;
  /** Steps replayed from a recording and steps run op by op on tfjs. */
  replayed: number;
  unrecorded: number;
  /** Programs dispatched and batch arrays written by replays. */
  replayedPrograms: number;
  replayedUploads: number;
}

const dc: DeviceCounters = {
  bindGroups: 0,
  buffersCreated: 0,
  submits: 0,
  writes: 0,
  hostMs: 0,
  replayed: 0,
  unrecorded: 0,
  replayedPrograms: 0,
  replayedUploads: 0,
};

export function deviceCounters(): DeviceCounters {
  return { ...dc };
}

export function resetDeviceCounters(): void {
  for (const k of Object.keys(dc) as (keyof DeviceCounters)[]) dc[k] = 0;
}

/** Count a training step run op by op on webgpu. */
export function noteUnrecorded(): void {
  dc.unrecorded++;
}

/** Add to the host-time counter (ms). */
export function addHostMs(ms: number): void {
  dc.hostMs += ms;
}

/** The name and detail of the program about to be dispatched (webgpu-kernels.ts names each), for profiles. */
let nextName: { name: string; detail: string; flops: number } | null = null;

/**
 * Name the next dispatch: a program's class or kernel name, what it computes (detail, e.g. its
 * output's shape) and its flops where counted (a matmul's). A capture keeps them with the dispatch.
 */
export function nameDispatch(name: string, detail: string, flops: number): void {
  nextName = { name, detail, flops };
}

/** The capture in progress, if any (at most one at a time). */
let capture: Capture | null = null;
let backend: WebGpuBackendLike | null = null;
/** buffer -> number of recordings holding it. */
const pins = new Map<GPUBuffer, number>();
/** Pinned buffers tfjs has released: returned to its pool when the last recording holding them goes. */
const released = new Set<GPUBuffer>();
let origRelease: ((buf: GPUBuffer, reuse?: boolean) => void) | null = null;
/** Shader modules and pipelines -> the bindings they write (absent: unknown, taken as all). */
const moduleWrites = new WeakMap<object, Set<number>>();
const pipelineWrites = new WeakMap<object, Set<number>>();

/** The group-0 bindings a WGSL program declares read_write storage (tfjs's and ours name the group). */
export function writtenBindings(code: string): Set<number> {
  const out = new Set<number>();
  const re = /@group\(\s*0\s*\)\s*@binding\(\s*(\d+)\s*\)\s*var\s*<\s*storage\s*,\s*read_write\s*>/g;
  for (const m of code.matchAll(re)) out.add(Number(m[1]));
  return out;
}

/**
 * Wrap the device, its queue and tfjs's buffer manager (once, when the backend is patched):
 * counters, the capture of a recording, and pinning.
 */
export function wrapDevice(b: WebGpuBackendLike): void {
  if (backend) return;
  backend = b;
  const dev = b.device;
  const q = b.queue;
  const createBindGroup = dev.createBindGroup;
  dev.createBindGroup = function (d: BindGroupDesc) {
    dc.bindGroups++;
    const bg = createBindGroup.call(this, d);
    if (capture) {
      const named = d.entries.filter((e) => e.resource?.buffer);
      const bufs = named.map((e) => e.resource.buffer!);
      const bindings = named.map((e) => e.binding);
      capture.bindGroups.set(bg, { d, bufs, bindings, lives: bufs.map((buf) => capture!.lifeOf(buf)) });
    }
    return bg;
  };
  // Which bindings each pipeline writes (its WGSL's read_write storage), for the scratch plan.
  const createShaderModule = dev.createShaderModule;
  dev.createShaderModule = function (d: { code: string }) {
    const m = createShaderModule.call(this, d);
    if (typeof d?.code === 'string') moduleWrites.set(m, writtenBindings(d.code));
    return m;
  };
  type PipelineDesc = { compute?: { module?: unknown } };
  const noteWrites = (p: unknown, d: PipelineDesc) => {
    const w = d?.compute?.module ? moduleWrites.get(d.compute.module) : undefined;
    if (w && p && typeof p === 'object') pipelineWrites.set(p, w);
    return p;
  };
  const createComputePipeline = dev.createComputePipeline;
  dev.createComputePipeline = function (d: PipelineDesc) {
    return noteWrites(createComputePipeline.call(this, d), d);
  };
  const createComputePipelineAsync = dev.createComputePipelineAsync;
  if (createComputePipelineAsync)
    dev.createComputePipelineAsync = function (d: PipelineDesc) {
      return createComputePipelineAsync.call(this, d).then((p: unknown) => noteWrites(p, d));
    };
  const createBuffer = dev.createBuffer;
  dev.createBuffer = function (d: { size: number }) {
    dc.buffersCreated++;
    const buf = createBuffer.call(this, d);
    countBuffer(buf, d.size);
    return buf;
  };
  const createCommandEncoder = dev.createCommandEncoder;
  dev.createCommandEncoder = function (d?: unknown) {
    const enc = createCommandEncoder.call(this, d);
    if (capture) captureEncoder(enc, capture);
    return enc;
  };
  const submit = q.submit;
  q.submit = function (cbs: unknown[]) {
    dc.submits++;
    pendingReads.clear();
    return submit.call(this, cbs);
  };
  const writeBuffer = q.writeBuffer;
  q.writeBuffer = function (...a: unknown[]) {
    dc.writes++;
    capture?.hostWritten.add(a[0]);
    return writeBuffer.apply(this, a);
  };
  const bm = b.bufferManager as unknown as {
    acquireBuffer(size: number, usage: number, mapped?: boolean, reuse?: boolean): GPUBuffer;
    releaseBuffer(buf: GPUBuffer, reuse?: boolean): void;
  };
  const acquire = bm.acquireBuffer.bind(bm);
  bm.acquireBuffer = (size: number, usage: number, mapped?: boolean, reuse?: boolean) => {
    const c = capture;
    // During a capture, a scratch buffer the step gave back is taken again first (see Capture.spare).
    const spare = c && !mapped && reuse !== false ? c.spare.get(bufferKey(size, usage))?.pop() : undefined;
    const buf = spare ?? acquire(size, usage, mapped, reuse);
    if (c) {
      // given back and taken again: what it holds now may outlive the capture
      c.freed.delete(buf);
      c.life.set(buf, c.lifeOf(buf) + 1);
      if (mapped) c.hostWritten.add(buf);
    }
    return buf;
  };
  origRelease = bm.releaseBuffer.bind(bm);
  bm.releaseBuffer = (buf: GPUBuffer, reuse?: boolean) => {
    const c = capture;
    c?.freed.add(buf);
    if (c && pins.has(buf) && c.mayReuse(buf)) {
      const k = bufferKey(buf.size, buf.usage);
      if (!c.spare.has(k)) c.spare.set(k, []);
      c.spare.get(k)!.push(buf);
    } else if (pins.has(buf)) released.add(buf);
    else origRelease!(buf, reuse);
  };
}

function captureEncoder(enc: any, c: Capture): void {
  const begin = enc.beginComputePass;
  enc.beginComputePass = function (d?: unknown) {
    const pass = begin.call(this, d);
    let pipe: unknown = null;
    let bg: unknown = null;
    const setPipeline = pass.setPipeline;
    pass.setPipeline = function (p: unknown) {
      pipe = p;
      return setPipeline.call(this, p);
    };
    const setBindGroup = pass.setBindGroup;
    pass.setBindGroup = function (i: number, g: unknown, ...rest: unknown[]) {
      if (i !== 0 || rest.length) c.refuse('a bind group other than group 0, or with dynamic offsets');
      bg = g;
      return setBindGroup.call(this, i, g, ...rest);
    };
    const dispatch = pass.dispatchWorkgroups;
    pass.dispatchWorkgroups = function (x: number, y = 1, z = 1) {
      const g = c.bindGroups.get(bg);
      if (!g) c.refuse('a bind group made before the recording started');
      else if (g.bufs.some((buf, k) => c.lifeOf(buf) !== g.lives[k]))
        c.refuse('a bind group naming a buffer given back since it was made');
      else for (const buf of g.bufs) c.pin(buf);
      c.ops.push({ kind: 'dispatch', pipe, bg, x, y, z, ...(nextName ?? { name: 'unnamed', detail: '', flops: 0 }) });
      nextName = null;
      return dispatch.call(this, x, y, z);
    };
    return pass;
  };
  const copy = enc.copyBufferToBuffer;
  enc.copyBufferToBuffer = function (src: GPUBuffer, so: number, dst: GPUBuffer, d0: number, size: number) {
    // A staging buffer's copy is an upload of host data: inputs are handled by the upload hook.
    if (src.usage & GPUBufferUsage.MAP_WRITE) c.refuse(`an upload of host data (${size} bytes) not from the batch`);
    else {
      c.pin(src);
      c.pin(dst);
      c.ops.push({ kind: 'copy', src, so, dst, d0, size, lives: [c.lifeOf(src), c.lifeOf(dst)] });
    }
    return copy.call(this, src, so, dst, d0, size);
  };
}

// ---------------------------------------------------------------------------------------------
// The per-step scalars: one storage buffer our kernels read per-step numbers from.

/** Slots of the scalars buffer (u32 / f32 words). */
export const SLOT = { lr: 0, c1: 1, c2: 2, emaDecay: 3, step: 4 } as const;
/** The first dropout seed's slot; seeds of one step take the slots after it, in model order. */
export const SEED0 = 16;
const SCALAR_WORDS = 1024;

let scalarsBuf: GPUBuffer | null = null;
const scalarsHost = new ArrayBuffer(SCALAR_WORDS * 4);
const scalarsF = new Float32Array(scalarsHost);
const scalarsU = new Uint32Array(scalarsHost);
let nextSeedSlot = SEED0;
/** The seeds given out since the step began (a recording replays this many draws). */
let seedsThisStep = 0;

/** The scalars buffer (made on first use). */
export function stepScalarsBuffer(b: WebGpuBackendLike): GPUBuffer {
  if (!scalarsBuf) {
    scalarsBuf = b.device.createBuffer({
      size: SCALAR_WORDS * 4,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST,
    });
  }
  return scalarsBuf;
}

/** A new step: dropout seeds start again at SEED0. */
export function beginStepScalars(): void {
  nextSeedSlot = SEED0;
  seedsThisStep = 0;
}

export function seedsGivenThisStep(): number {
  return seedsThisStep;
}

/** Slots read by programs encoded but not yet submitted (cleared at every submit). */
const pendingReads = new Set<number>();

/** Our kernels say which slots the program they just encoded reads. */
export function markScalarsRead(...slots: number[]): void {
  for (const s of slots) pendingReads.add(s);
}

/**
 * Write a value into a slot now. queue.writeBuffer takes effect before the programs submitted
 * after it, so where an encoded program not yet submitted reads this slot (an older value), what
 * is encoded is submitted first.
 */
export function setScalar(b: WebGpuBackendLike, slot: number, value: number, kind: 'f32' | 'u32'): void {
  if (pendingReads.has(slot) && b.commandEncoder) {
    b.endComputePassEncoder();
    b.submitQueue();
  }
  if (kind === 'f32') scalarsF[slot] = value;
  else scalarsU[slot] = value >>> 0;
  b.queue.writeBuffer(stepScalarsBuffer(b), slot * 4, scalarsHost, slot * 4, 4);
}

/** The slot a dropout seed is read from: the next free one of this step, written now. */
export function seedSlot(b: WebGpuBackendLike, seed: number): number {
  if (nextSeedSlot >= SCALAR_WORDS) {
    // More dropouts than slots without a new step: let what was encoded run first.
    if (b.commandEncoder) {
      b.endComputePassEncoder();
      b.submitQueue();
    }
    nextSeedSlot = SEED0;
  }
  const slot = nextSeedSlot++;
  seedsThisStep++;
  setScalar(b, slot, seed, 'u32');
  return slot;
}

// ---------------------------------------------------------------------------------------------
// Recordings.

/**
 * A recording's ops into enc: its dispatches in one compute pass between copies; profiled
 * (timing), each in a pass of its own where timing.split, the passes stamped as timing says.
 */
function encodeOps(enc: any, ops: Op[], timing: PassTiming | null): void {
  let lastStart = 0; // the dispatch that opens the last pass
  if (timing && !timing.split) {
    let k = 0;
    let open = false;
    for (const op of ops) {
      if (op.kind === 'dispatch') {
        if (!open) lastStart = k;
        open = true;
        k++;
      } else open = false;
    }
  }
  let pass: any = null;
  let k = 0;
  for (const op of ops) {
    if (op.kind === 'dispatch') {
      if (pass && timing?.split) {
        pass.end();
        pass = null;
      }
      pass ??= enc.beginComputePass(timing?.pass(k, !timing.split && k === lastStart));
      pass.setPipeline(op.pipe);
      pass.setBindGroup(0, op.bg);
      pass.dispatchWorkgroups(op.x, op.y, op.z);
      k++;
    } else {
      pass?.end();
      pass = null;
      enc.copyBufferToBuffer(op.src, op.so, op.dst, op.d0, op.size);
    }
  }
  pass?.end();
}

/** A recording's dispatches, in order, for its profile. */
function dispatchesOf(rec: Recording): TimedDispatch[] {
  const out: TimedDispatch[] = [];
  for (const op of rec.ops) {
    if (op.kind === 'dispatch')
      out.push({ name: op.name, detail: op.detail, flops: op.flops, x: op.x, y: op.y, z: op.z });
  }
  return out;
}

type Op =
  | {
      kind: 'dispatch';
      pipe: unknown;
      bg: unknown;
      x: number;
      y: number;
      z: number;
      name: string;
      detail: string;
      flops: number;
    }
  | {
      kind: 'copy';
      src: GPUBuffer;
      so: number;
      dst: GPUBuffer;
      d0: number;
      size: number;
      /** The buffers' lives when captured (see Capture.life). */
      lives: [number, number];
    };

type HostArray = Int32Array | Float32Array | Uint32Array;

/** What tfjs passes to createBindGroup (kept, to make a recording's bind groups over its scratch places). */
interface BindGroupDesc {
  layout: unknown;
  entries: { binding: number; resource: { buffer?: GPUBuffer; offset?: number; size?: number } }[];
}

class Capture {
  readonly ops: Op[] = [];
  /** Given-back buffers the bounded pool destroyed for room (webgpu-pool.ts). */
  readonly destroyed = new Set<GPUBuffer>();
  /** The bind groups made during the capture: what tfjs passed, the buffers named and their lives then. */
  readonly bindGroups = new Map<
    unknown,
    { d: BindGroupDesc; bufs: GPUBuffer[]; bindings: number[]; lives: number[] }
  >();
  readonly pinned = new Set<GPUBuffer>();
  /** Buffers tfjs gave back (and did not take again), and the host wrote, during the capture (taken: `life`). */
  readonly freed = new Set<GPUBuffer>();
  readonly hostWritten = new Set<GPUBuffer>();
  /** The batch's arrays, by identity, and the buffers they were uploaded into. */
  readonly inputs = new Map<HostArray, GPUBuffer>();
  /** Buffers of tfjs's host-made constants (see captureUpload). */
  readonly constants: GPUBuffer[] = [];
  /**
   * Each buffer's life: how many times tfjs took it during the capture (0: it held a tensor from
   * before). A buffer the step gave back may be taken again for another tensor (as tfjs's pool
   * would): its ops before and after are uses of two different scratch buffers.
   */
  readonly life = new Map<GPUBuffer, number>();
  /**
   * Scratch buffers the step gave back, by tfjs's pool key: taken again first by the step's next
   * requests, as tfjs's pool would op by op, rather than a new buffer for every tensor of the step.
   * Released (as pinned buffers are) when the capture ends.
   */
  readonly spare = new Map<string, GPUBuffer[]>();
  why: string | null = null;

  constructor(readonly inputArrays: Map<HostArray, string>) {}

  lifeOf(buf: GPUBuffer): number {
    return this.life.get(buf) ?? 0;
  }

  /**
   * Whether a buffer given back now may serve the step again: it was taken during the capture and
   * not written from the host (an upload, a uniform, a read-back), so its next use writes it anew.
   */
  mayReuse(buf: GPUBuffer): boolean {
    const host = GPUBufferUsage.UNIFORM | GPUBufferUsage.MAP_READ | GPUBufferUsage.MAP_WRITE;
    return this.lifeOf(buf) >= 1 && !this.hostWritten.has(buf) && !(buf.usage & host);
  }

  pin(buf: GPUBuffer): void {
    if (this.pinned.has(buf)) return;
    this.pinned.add(buf);
    pins.set(buf, (pins.get(buf) ?? 0) + 1);
  }

  refuse(why: string): void {
    this.why ??= why;
  }
}

/**
 * The upload hook (webgpu-kernels.ts calls it for every tensor upload): during a capture, an
 * array of the batch goes into a buffer of the recording's own instead of tfjs's pool; another
 * upload of host data refuses the recording (it would not change with the batch on replay). The
 * constants of ops (rank 0) are left to webgpu-kernels.ts: a per-step number must not reach an op
 * as a JS number, but through the scalars buffer (seedSlot, setScalar).
 * Returns true where it did the upload.
 */
export function captureUpload(
  b: WebGpuBackendLike,
  d: {
    values: ArrayLike<number> | null;
    resource: GPUBuffer | null;
    external?: boolean;
    dtype: string;
    shape: number[];
  },
): boolean {
  const c = capture;
  // Rank 0: the constants of ops, shared device buffers of their value (webgpu-kernels.ts).
  if (!c || d.values == null || d.shape.length === 0) return false;
  const arr = d.values as HostArray;
  const input = c.inputArrays.has(arr);
  // tfjs's own constants made on the host (ones(x.shape) in Mean's gradient): one value repeated,
  // the same every step. Kept in a buffer of the recording's, written once, not on replay.
  const fill = !input && arr.length > 0 && isFill(arr);
  if (!input && !fill) {
    c.refuse(`an upload of host data (${arr.length} values) not from the batch`);
    return false;
  }
  if (!((d.dtype === 'int32' && arr instanceof Int32Array) || (d.dtype === 'float32' && arr instanceof Float32Array))) {
    c.refuse(`host data uploaded as ${d.dtype}`);
    return false;
  }
  let buf = input ? c.inputs.get(arr) : undefined;
  if (!buf) {
    buf = b.device.createBuffer({
      size: Math.max(16, Math.ceil(arr.byteLength / 16) * 16),
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC,
    });
    if (arr.byteLength > 0) b.queue.writeBuffer(buf, 0, arr);
    if (input) c.inputs.set(arr, buf);
    else c.constants.push(buf);
  }
  d.resource = buf;
  d.external = true;
  return true;
}

function isFill(a: HostArray): boolean {
  const v = a[0];
  for (let i = 1; i < a.length; i++) if (a[i] !== v) return false;
  return true;
}

/** A fixed read-back ring: an output copied into one of these per replay, mapped asynchronously. */
const RING = 8;

interface Readback {
  buf: GPUBuffer;
  pending: Promise<void> | null;
}

export interface Recording {
  key: string;
  ops: Op[];
  pinned: Set<GPUBuffer>;
  /** Paths of the batch's arrays (e.g. 'ids', 'masked.input') and their buffers. */
  inputs: { path: string; buf: GPUBuffer }[];
  constants: GPUBuffer[];
  /** Dropout seeds the step draws. */
  seeds: number;
  /** The output read back (loss or logits), and its byte size. */
  out: GPUBuffer;
  outBytes: number;
  /** The variables' buffers the recording names (weights, moments, EMA), checked before a replay. */
  vars: { v: tf.Variable; buf: GPUBuffer }[];
  ring: Readback[];
  nextRing: number;
  /** Programs a replay dispatches. */
  dispatches: number;
  /** Bytes of the recording's own buffers (not the variables', not the shared scratch blocks). */
  bytes: number;
  /** Its place in the arena (its ops name the arena's blocks), and the bytes of the scratch buffers they stand for. */
  tenant: Tenant<GPUBuffer> | null;
  scratchBytes: number;
  /** Bytes it would pin alone: its own and its scratch planned on blocks of its own. */
  aloneBytes: number;
}

/** The typed arrays of a batch object (its fields, and the fields of its object fields), by path. */
export function batchArrays(b: object): Map<HostArray, string> {
  const out = new Map<HostArray, string>();
  const visit = (o: object, prefix: string, depth: number) => {
    for (const [k, v] of Object.entries(o)) {
      if (v instanceof Int32Array || v instanceof Float32Array || v instanceof Uint32Array) {
        if (!out.has(v)) out.set(v, prefix + k);
      } else if (v && typeof v === 'object' && !Array.isArray(v) && depth < 1) visit(v, `${prefix}${k}.`, depth + 1);
    }
  };
  visit(b, '', 0);
  return out;
}

function arrayAt(b: object, path: string): HostArray {
  let o: any = b;
  for (const k of path.split('.')) o = o?.[k];
  return o as HostArray;
}

function bufferOf(b: WebGpuBackendLike, t: tf.Tensor): GPUBuffer | null {
  return b.tensorMap.has(t.dataId) ? (b.tensorMap.get(t.dataId).resource ?? null) : null;
}

/** Flush what tfjs has encoded, so that a capture or a replay starts on an empty stream. */
function flush(b: WebGpuBackendLike): void {
  if (b.commandEncoder) {
    b.endComputePassEncoder();
    b.submitQueue();
  }
}

/**
 * One recording fewer holds these buffers: those no recording holds that tfjs has released go
 * back to its pool (reuse), or are destroyed.
 */
function unpinBuffers(bufs: Iterable<GPUBuffer>, reuse: boolean): void {
  for (const buf of bufs) {
    const n = (pins.get(buf) ?? 1) - 1;
    if (n > 0) {
      pins.set(buf, n);
      continue;
    }
    pins.delete(buf);
    if (released.delete(buf)) origRelease!(buf, reuse);
  }
}

function unpin(r: Recording): void {
  unpinBuffers(r.pinned, true);
  for (const { buf } of r.inputs) buf.destroy();
  for (const buf of r.constants) buf.destroy();
  for (const rb of r.ring) {
    if (rb.pending) void rb.pending.then(() => rb.buf.destroy());
    else rb.buf.destroy();
  }
}

/** A captured step's scratch: its uses, which (buffer, life) each stands for, and the buffers all scratch. */
interface Scratch {
  uses: ScratchUse[];
  /** For each use, the uses an op names together with it where one of the two is written. */
  apart: number[][];
  /** buffer -> life -> index into uses. */
  index: Map<GPUBuffer, Map<number, number>>;
  /** Buffers every named life of which is scratch and that hold nothing after the capture. */
  whole: Set<GPUBuffer>;
}

const noScratch = (): Scratch => ({ uses: [], apart: [], index: new Map(), whole: new Set() });

/**
 * The captured step's scratch buffers and their uses (first and last op): a life of a buffer (see
 * Capture.life) that began and ended during the capture, never written from the host (uniforms,
 * uploads), not the output or a variable. Such a buffer held no tensor before that life and holds
 * none after it: the step's programs write it before they read it, so replays can share it.
 */
function scratchOf(c: Capture, out: GPUBuffer, vars: Set<GPUBuffer>): Scratch {
  const isScratch = (buf: GPUBuffer, life: number) =>
    life >= 1 && c.mayReuse(buf) && !vars.has(buf) && (life < c.lifeOf(buf) || (c.freed.has(buf) && buf !== out));
  const sc = noScratch();
  const mixed = new Set<GPUBuffer>();
  const apart: Set<number>[] = [];
  /** The use of a buffer's life at op i (-1: not scratch). */
  const use = (buf: GPUBuffer, life: number, i: number): number => {
    if (!isScratch(buf, life)) {
      mixed.add(buf);
      return -1;
    }
    let lives = sc.index.get(buf);
    if (!lives) sc.index.set(buf, (lives = new Map()));
    const k = lives.get(life);
    if (k !== undefined) {
      sc.uses[k].last = i;
      return k;
    }
    lives.set(life, sc.uses.length);
    apart.push(new Set());
    return sc.uses.push({ size: buf.size, usage: buf.usage, first: i, last: i }) - 1;
  };
  // WebGPU takes a buffer written by a dispatch as bound to nothing else there, and refuses a copy
  // within one buffer: such uses get different blocks of the arena.
  const together = (named: number[], written: boolean[]) => {
    named.forEach((a, k) => {
      if (a < 0) return;
      named.forEach((b, j) => {
        if (b >= 0 && b !== a && (written[k] || written[j])) apart[a].add(b);
      });
    });
  };
  c.ops.forEach((op, i) => {
    if (op.kind === 'copy') {
      together([use(op.src, op.lives[0], i), use(op.dst, op.lives[1], i)], [false, true]);
    } else {
      const g = c.bindGroups.get(op.bg)!;
      const w = op.pipe && typeof op.pipe === 'object' ? pipelineWrites.get(op.pipe) : undefined;
      together(
        g.bufs.map((buf, k) => use(buf, g.lives[k], i)),
        g.bindings.map((n) => !w || w.has(n)),
      );
    }
  });
  sc.apart = apart.map((a) => [...a]);
  for (const buf of sc.index.keys()) if (!mixed.has(buf) && c.freed.has(buf)) sc.whole.add(buf);
  return sc;
}

export interface RecorderStats {
  size: number;
  hits: number;
  misses: number;
  recorded: number;
  fallbacks: number;
}

/**
 * The scratch memory of every recorder's recordings (one per process: one device): replays run
 * one after another on the queue, whichever recorder made them, so a training step's recordings
 * and an evaluation's (or a teacher's) use the same blocks, the most one needs, not their sum.
 * tfjs's pool may evict it for room in a recorder's pass op by op (webgpu-pool.ts).
 */
let arena: Arena<GPUBuffer> | null = null;

/** Bytes of the shared scratch blocks (held or evicted). */
export function sharedScratchBytes(): number {
  return arena?.bytes() ?? 0;
}

function sharedArena(b: WebGpuBackendLike): Arena<GPUBuffer> {
  if (!arena) {
    arena = new Arena<GPUBuffer>(
      (s) => {
        makeRoom(s.size);
        return b.device.createBuffer(s);
      },
      (buf) => buf.destroy(),
      () => Number(b.device.limits?.maxBufferSize ?? Infinity),
    );
    registerEvictable(arena);
  }
  return arena;
}

/**
 * One recorder per training run (or inference pass): its recordings hold the buffers of that
 * run's variables. The least recently used recordings go beyond `capacity` of them, or where they
 * pin more than `maxMiB` beyond what the biggest of them alone would (BERT_PRUNER_RECORDINGS,
 * BERT_PRUNER_RECORDINGS_MB; batches bucketed by length give a training run some tens of sequence
 * lengths, each seen every epoch: a cache smaller than that would evict every recording before
 * its reuse). The biggest alone is what its step needs anyway (op by op, tfjs's pool holds more),
 * and is not counted, so that a step bigger than maxMiB (BERT-base's) still keeps its other
 * lengths, which mostly fit in its scratch blocks. log: one line per fallback reason.
 */
export class Recorder {
  private readonly cache = new Map<string, Recording>();
  private readonly seen = new Map<string, number>();
  private readonly refused = new Map<string, string>();
  private readonly said = new Set<string>();
  readonly stats: RecorderStats = { size: 0, hits: 0, misses: 0, recorded: 0, fallbacks: 0 };
  /** Timing the replays (profileReplays), or not. */
  private profiler: PassProfiler | null = null;
  /** The scratch memory all recorders' recordings share (webgpu-scratch.ts). */
  private readonly arena: Arena<GPUBuffer>;
  /** The arena's repacks and evictions when this recorder was made. */
  private readonly arenaAt: { repacks: number; evictions: number };

  constructor(
    readonly name: string,
    private readonly b: WebGpuBackendLike,
    private readonly vars: () => tf.Variable[],
    private readonly log: (line: string) => void,
    readonly capacity = Number(process.env.BERT_PRUNER_RECORDINGS ?? 256),
    readonly maxMiB = Number(process.env.BERT_PRUNER_RECORDINGS_MB ?? 2048),
  ) {
    this.arena = sharedArena(b);
    this.arenaAt = { repacks: this.arena.repacks, evictions: this.arena.evictions };
  }

  /** The key of a batch: the model's key and every batch array's length. */
  key(modelKey: string, batch: object): string {
    const parts = [modelKey];
    for (const [arr, path] of batchArrays(batch)) parts.push(`${path}:${arr.length}`);
    return parts.join('|');
  }

  /**
   * What to do with this key: 'replay' (a valid recording is there), 'record' (seen before, not
   * refused) or 'run' (op by op).
   */
  plan(key: string): { kind: 'replay'; rec: Recording } | { kind: 'record' } | { kind: 'run' } {
    const r = this.cache.get(key);
    if (r) {
      const stale = r.vars.find(({ v, buf }) => v.isDisposed || bufferOf(this.b, v) !== buf);
      if (!stale) {
        this.cache.delete(key);
        this.cache.set(key, r); // most recently used last
        this.stats.hits++;
        return { kind: 'replay', rec: r };
      }
      this.drop(key);
    }
    this.stats.misses++;
    if (this.refused.has(key) || this.capacity <= 0) {
      this.stats.fallbacks++;
      return { kind: 'run' };
    }
    const n = this.seen.get(key) ?? 0;
    if (this.seen.size > 4096) this.seen.clear();
    this.seen.set(key, n + 1);
    return n >= 1 ? { kind: 'record' } : { kind: 'run' };
  }

  /**
   * Run fn (one real step or batch, on tfjs) while capturing it. fn returns the output tensor
   * (kept alive by the caller until it is read); null where the recording was refused.
   */
  async record(key: string, batch: object, fn: () => tf.Tensor): Promise<{ out: tf.Tensor; rec: Recording | null }> {
    const b = this.b;
    await this.drainForEvictions();
    flush(b);
    const vars = this.vars();
    const before = vars.map((v) => bufferOf(b, v));
    const c = new Capture(batchArrays(batch));
    capture = c;
    // The buffers the step gave back are idle: the bounded pool may destroy them for room (their
    // lives so far are scratch, moved onto the arena at the end; checked below).
    setExtraIdle({
      free: c.spare,
      destroy: (buf) => {
        c.destroyed.add(buf);
        origRelease!(buf, false); // tfjs takes it off its books and destroys it
      },
    });
    beginStepScalars();
    let out: tf.Tensor;
    try {
      out = allowEvictions(fn);
      flush(b);
    } finally {
      setExtraIdle(null);
      capture = null;
      // what the step gave back and did not take again: released, as a pinned buffer is
      for (const bufs of c.spare.values()) for (const buf of bufs) released.add(buf);
    }
    const seeds = seedsGivenThisStep();
    const outBuf = bufferOf(b, out);
    const changed = vars.findIndex((v, i) => v.isDisposed || bufferOf(b, v) !== before[i] || before[i] === null);
    if (!c.why && changed >= 0) c.refuse(`a variable's buffer changed during the step (${vars[changed].name})`);
    if (!c.why && (!outBuf || !c.pinned.has(outBuf))) c.refuse('the output is not written by the recorded programs');
    if (!c.why && nextSeedSlot >= SCALAR_WORDS) c.refuse('more dropout seeds than scalar slots');
    const varBufs = new Set(before);
    const scratch = c.why ? noScratch() : scratchOf(c, outBuf, varBufs);
    if (!c.why && [...c.destroyed].some((buf) => !scratch.whole.has(buf)))
      c.refuse('a buffer destroyed during the capture holds more than scratch');
    let bytes = 0;
    for (const buf of c.pinned) if (!varBufs.has(buf) && !scratch.whole.has(buf)) bytes += buf.size;
    // A pass bigger than the whole cache (BERT-base's step) is recorded all the same: its blocks
    // replace the scratch buffers its capture made, which are destroyed (the cache's limit counts
    // what the others add beyond it, below).
    const rec: Recording = {
      key,
      ops: c.ops,
      pinned: c.pinned,
      inputs: [...c.inputs].map(([arr, buf]) => ({ path: c.inputArrays.get(arr)!, buf })),
      constants: c.constants,
      seeds,
      out: outBuf,
      outBytes: out.size * 4,
      vars: vars.map((v, i) => ({ v, buf: before[i] })),
      ring: [],
      nextRing: 0,
      dispatches: c.ops.filter((o) => o.kind === 'dispatch').length,
      bytes,
      tenant: null,
      scratchBytes: 0,
      aloneBytes: bytes,
    };
    if (c.why) {
      unpin(rec);
      this.refused.set(key, c.why);
      this.stats.fallbacks++;
      if (!this.said.has(c.why)) {
        this.said.add(c.why);
        this.log(`${this.name}: not recorded, runs op by op (${c.why})`);
      }
      return { out, rec: null };
    }
    const tenant = this.shareScratch(rec, c, scratch);
    if (tenant) {
      // The capture's scratch buffers are destroyed; Dawn frees their memory once the GPU is done
      // with the step. The blocks are made after that, so that the two are never both held.
      await this.b.device.queue.onSubmittedWorkDone();
      this.arena.add(tenant);
      rec.aloneBytes += this.arena.aloneBytes(tenant);
    }
    this.cache.set(key, rec);
    this.stats.recorded++;
    while (this.cache.size > this.capacity || (this.cache.size > 1 && this.beyondBiggestMiB() > this.maxMiB))
      this.drop(this.cache.keys().next().value as string);
    this.stats.size = this.cache.size;
    return { out, rec };
  }

  /**
   * Replay: the batch's arrays into the recording's buffers, the scalars (`scalars` fills them:
   * lr, bias corrections, EMA decay, and rec.seeds dropout seeds from SEED0), the kept programs in
   * one command buffer, the output copied into a read-back buffer; one submit. Resolves once
   * submitted (at once, unless all RING read-backs of this recording are still in flight) with the
   * output's promise, which resolves when the GPU is done.
   */
  async replay(
    rec: Recording,
    batch: object,
    scalars: ((s: { f: Float32Array; u: Uint32Array }) => void) | null,
  ): Promise<{ result: Promise<Float32Array> }> {
    const rb = this.readback(rec);
    if (rb.pending) await rb.pending;
    const t0 = performance.now();
    const b = this.b;
    flush(b);
    const q = b.queue;
    for (const { path, buf } of rec.inputs) {
      const arr = arrayAt(batch, path);
      if (arr.byteLength > 0) q.writeBuffer(buf, 0, arr);
    }
    if (scalars) {
      beginStepScalars();
      scalars({ f: scalarsF, u: scalarsU });
      q.writeBuffer(stepScalarsBuffer(b), 0, scalarsHost, 0, (SEED0 + rec.seeds) * 4);
    }
    // Its arena's blocks made again where evicted since (and it bound to them)
    if (rec.tenant) this.arena.ensure(rec.tenant);
    const enc = b.device.createCommandEncoder();
    const timing = this.profiler?.next(rec.key, () => dispatchesOf(rec)) ?? null;
    timing?.begin();
    encodeOps(enc, rec.ops, timing);
    timing?.end(enc);
    enc.copyBufferToBuffer(rec.out, 0, rb.buf, 0, rec.outBytes);
    q.submit([enc.finish()]);
    timing?.collect();
    if (scalars) dc.hostMs += performance.now() - t0; // a training step's (inference is not counted)
    dc.replayed++;
    dc.replayedPrograms += rec.dispatches;
    dc.replayedUploads += rec.inputs.length;
    const result = rb.buf.mapAsync(GPUMapMode.READ).then(() => {
      const data = new Float32Array(rb.buf.getMappedRange(0, rec.outBytes).slice(0));
      rb.buf.unmap();
      return data;
    });
    rb.pending = result.then(
      () => undefined,
      () => undefined,
    );
    return { result };
  }

  /**
   * Time the replays from now on (webgpu-timing.ts): those of the first recording replayed, the
   * whole pass and each program alone in turn, until profileResult. false: the device has no
   * timestamp queries (nothing is timed).
   */
  profileReplays(): boolean {
    this.profiler?.dispose();
    this.profiler = null;
    if (!this.b.device.features?.has('timestamp-query')) return false;
    this.profiler = new PassProfiler(this.b.device);
    return true;
  }

  /** The profile of the replays timed since profileReplays (null: none of each kind); timing stops. */
  async profileResult(): Promise<PassProfile | null> {
    const p = this.profiler;
    this.profiler = null;
    return p ? p.result() : null;
  }

  private readback(rec: Recording): Readback {
    if (rec.ring.length === 0) {
      // All at once, at the first replay: no buffer is made by the replays after it.
      const size = Math.max(16, Math.ceil(rec.outBytes / 16) * 16);
      for (let i = 0; i < RING; i++) {
        const buf = this.b.device.createBuffer({ size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
        rec.ring.push({ buf, pending: null });
      }
    }
    const rb = rec.ring[rec.nextRing];
    rec.nextRing = (rec.nextRing + 1) % RING;
    return rb;
  }

  /**
   * A new recording's scratch, ready for the arena (webgpu-scratch.ts): the tenant whose bind()
   * points its ops at their places in the blocks (bind groups made anew where one names a scratch
   * buffer; again where the arena is repacked or was evicted). The buffers tfjs made are destroyed
   * here; the caller adds the tenant to the arena once the queue has drained. null: no scratch.
   */
  private shareScratch(rec: Recording, c: Capture, scratch: Scratch): Tenant<GPUBuffer> | null {
    if (scratch.uses.length === 0) return null;
    const captured = rec.ops;
    const { index } = scratch;
    const descs = new Map<unknown, { d: BindGroupDesc; lives: Map<GPUBuffer, number> } | null>();
    for (const op of captured) {
      if (op.kind !== 'dispatch' || descs.has(op.bg)) continue;
      const { d, bufs, lives } = c.bindGroups.get(op.bg)!;
      const named = new Map(bufs.map((buf, k) => [buf, lives[k]]));
      // null: names no scratch
      descs.set(op.bg, bufs.some((buf, k) => index.get(buf)?.has(lives[k])) ? { d, lives: named } : null);
    }
    const device = this.b.device;
    rec.tenant = {
      uses: scratch.uses,
      apart: scratch.apart,
      bind(places: { buf: GPUBuffer; offset: number }[]) {
        const to = (buf: GPUBuffer, life: number) => {
          const i = index.get(buf)?.get(life);
          return i === undefined ? null : places[i];
        };
        const groups = new Map<unknown, unknown>();
        const regroup = (bg: unknown): unknown => {
          let g = groups.get(bg);
          if (g) return g;
          const desc = descs.get(bg);
          g = !desc
            ? bg
            : device.createBindGroup({
                layout: desc.d.layout,
                entries: desc.d.entries.map((e) => {
                  const buf = e.resource?.buffer;
                  const at = buf ? to(buf, desc.lives.get(buf)!) : null;
                  if (!at) return e;
                  const offset = e.resource.offset ?? 0;
                  return {
                    binding: e.binding,
                    resource: {
                      buffer: at.buf,
                      offset: at.offset + offset,
                      size: e.resource.size ?? buf.size - offset,
                    },
                  };
                }),
              });
          groups.set(bg, g);
          return g;
        };
        rec.ops = captured.map((op) => {
          if (op.kind === 'dispatch') return { ...op, bg: regroup(op.bg) };
          const src = to(op.src, op.lives[0]);
          const dst = to(op.dst, op.lives[1]);
          return {
            ...op,
            src: src ? src.buf : op.src,
            so: op.so + (src?.offset ?? 0),
            dst: dst ? dst.buf : op.dst,
            d0: op.d0 + (dst?.offset ?? 0),
          };
        });
      },
    };
    for (const buf of scratch.whole) rec.pinned.delete(buf);
    // Destroyed, not given back to tfjs's pool: sized for this key, which now replays, they would
    // sit there unused (tfjs never frees its pool), as much again as the step made.
    unpinBuffers(scratch.whole, false);
    for (const u of scratch.uses) rec.scratchBytes += u.size;
    return rec.tenant;
  }

  /**
   * A pass of a key not replayed (plan's 'run'), op by op: the arenas' memory may serve it where
   * tfjs's idle buffers do not (webgpu-pool.ts allowEvictions).
   */
  async run<T>(fn: () => T): Promise<T> {
    await this.drainForEvictions();
    return allowEvictions(fn);
  }

  /**
   * Before a pass op by op that may evict arenas: where they hold memory, the queue drained first.
   * Dawn frees a destroyed buffer's memory only once the GPU is done with it, and replays may be
   * in flight (the loss is read back steps later): without the wait, the blocks' memory and the
   * pass's new buffers could be held at once. A pass op by op is a key's first or second, so the
   * wait comes a few times per sequence length.
   */
  private async drainForEvictions(): Promise<void> {
    if (evictableBytes() > 0) await this.b.device.queue.onSubmittedWorkDone();
  }

  /** Times the shared arena was planned afresh since this recorder was made (webgpu-scratch.ts). */
  get repacks(): number {
    return this.arena.repacks - this.arenaAt.repacks;
  }

  /** Times since then the arena gave up its memory to a pass op by op (webgpu-pool.ts allowEvictions). */
  get evictions(): number {
    return this.arena.evictions - this.arenaAt.evictions;
  }

  /**
   * Bytes pinned: the recordings' own buffers, the scratch blocks they use (shared with each
   * other, and with other recorders' recordings); and what they would pin with scratch buffers of
   * their own (as they were made, unshared).
   */
  memory(): { own: number; scratch: number; unshared: number } {
    let own = 0;
    let unshared = 0;
    for (const r of this.cache.values()) {
      own += r.bytes;
      unshared += r.bytes + r.scratchBytes;
    }
    return { own, scratch: this.arena.usedBytes(this.tenants()), unshared };
  }

  /** Its recordings' places in the arena. */
  private tenants(): Tenant<GPUBuffer>[] {
    return [...this.cache.values()].flatMap((r) => (r.tenant ? [r.tenant] : []));
  }

  /**
   * MiB pinned beyond what the biggest recording alone would pin. The scratch blocks this
   * recorder's recordings use may have been made bigger for another recorder's (the arena is
   * shared): over the limit by them, what its recordings would need planned alone is counted.
   */
  private beyondBiggestMiB(): number {
    const m = this.memory();
    let biggest = 0;
    for (const r of this.cache.values()) biggest = Math.max(biggest, r.aloneBytes);
    const over = (scratch: number) => (m.own + scratch - biggest) / 2 ** 20;
    if (over(m.scratch) <= this.maxMiB) return over(m.scratch);
    return over(Math.min(m.scratch, this.arena.plannedBytes(this.tenants())));
  }

  private drop(key: string): void {
    const r = this.cache.get(key);
    if (!r) return;
    this.cache.delete(key);
    unpin(r);
    if (r.tenant) this.arena.remove(r.tenant);
    this.stats.size = this.cache.size;
  }

  /** The summary line, to the recorder's log. */
  logSummary(): void {
    this.log(this.summary());
  }

  /** "train step: recordings: 3 kept of at most 256 (12.5 MiB, 11.9 of it scratch shared), 120 replays of 130 ..." */
  summary(): string {
    const s = this.stats;
    const total = s.hits + s.misses;
    const m = this.memory();
    const mib = (n: number) => (n / 2 ** 20).toFixed(1);
    return (
      `${this.name}: recordings: ${this.cache.size} kept of at most ${this.capacity} ` +
      `(${mib(m.own + m.scratch)} MiB, ${mib(m.scratch)} of it scratch shared` +
      `${this.repacks ? `, repacked ${this.repacks}x` : ''}` +
      `${this.evictions ? `, given up for steps op by op ${this.evictions}x` : ''}), ` +
      `${s.hits} replays of ${total} (${total ? Math.round((100 * s.hits) / total) : 0}% hit rate), ` +
      `${s.recorded} recorded, ${s.fallbacks} op by op for a refused key`
    );
  }

  dispose(): void {
    this.profiler?.dispose();
    this.profiler = null;
    for (const k of [...this.cache.keys()]) this.drop(k);
    this.seen.clear();
  }
}

/** The active webgpu backend's wrapped state, for recorders (null: wrapDevice has not run). */
export function recordingBackend(): WebGpuBackendLike | null {
  return backend && tf.getBackend() === 'webgpu' ? backend : null;
}

/** The backend to record on: webgpu's, unless BERT_PRUNER_RECORD=0 turns recording off. */
export function recordingOn(): WebGpuBackendLike | null {
  return process.env.BERT_PRUNER_RECORD === '0' ? null : recordingBackend();
}

/** Where steps are recorded, batch lengths are rounded up to a multiple of this many tokens. */
const RECORDED_LENGTH_MULTIPLE = 8;

/**
 * The padding that gives recorded steps few shapes, or undefined where nothing is recorded (the
 * batches stay exactly as long as their longest row): lengths rounded up to a multiple of 8, never
 * past maxLen (the longest input the examples were cut to).
 */
export function replayPadding(maxLen: number): { multiple: number; max: number } | undefined {
  return recordingOn() ? { multiple: RECORDED_LENGTH_MULTIPLE, max: maxLen } : undefined;
}

// ---------------------------------------------------------------------------------------------
// Inference: one recorder for the model last predicted with (model/predict.ts).

/** The inference recorders of the models last predicted with (two: bench alternates a pair). */
const inference: { params: Map<string, tf.Variable>; recorder: Recorder; modelKey: string }[] = [];
const INFERENCE_MODELS = 2;

/**
 * The inference recorder of a model (its variables by name): the same one while the same model is
 * used (validation every epoch replays the recordings of the last), a new one for another model
 * (the least recently used one goes). null off webgpu, or with BERT_PRUNER_RECORD=0.
 */
export function inferenceRecorder(params: Map<string, tf.Variable>): { recorder: Recorder; modelKey: string } | null {
  const b = recordingOn();
  if (!b) return null;
  const k = inference.findIndex((x) => x.params === params);
  if (k >= 0) {
    const [hit] = inference.splice(k, 1);
    inference.push(hit);
    return hit;
  }
  // A new model. One since disposed (a stage's, once it ended) is not predicted with again: its
  // recordings would pin its weights' buffers and their scratch until two other models were.
  for (let i = inference.length - 1; i >= 0; i--)
    if ([...inference[i].params.values()].some((v) => v.isDisposed)) inference.splice(i, 1)[0].recorder.dispose();
  while (inference.length >= INFERENCE_MODELS) inference.shift()!.recorder.dispose();
  const r = {
    params,
    recorder: new Recorder('inference', b, () => [...params.values()], stderrLog),
    modelKey: modelKeyOf(params),
  };
  inference.push(r);
  return r;
}

/** Where a recorder with no stage log writes. */
const stderrLog = (line: string) => process.stderr.write(`bert-pruner: ${line}\n`);

/** A model's key: its parameters' names and shapes. */
function modelKeyOf(params: Map<string, tf.Variable>): string {
  return [...params].map(([n, v]) => `${n}:${v.shape.join('x')}`).join(',');
}

/**
 * A recorder of its own for passes over a model and extra variables (importance scoring's gates),
 * which the caller disposes; null off webgpu, or with BERT_PRUNER_RECORD=0. log: the stage's
 * (default stderr).
 */
export function passRecorder(
  name: string,
  params: Map<string, tf.Variable>,
  extra: tf.Variable[],
  log: (line: string) => void = stderrLog,
): { recorder: Recorder; modelKey: string } | null {
  const b = recordingOn();
  if (!b) return null;
  const modelKey = modelKeyOf(params) + extra.map((v) => `;${v.shape.join('x')}`).join('');
  return { recorder: new Recorder(name, b, () => [...params.values(), ...extra], log), modelKey };
}
