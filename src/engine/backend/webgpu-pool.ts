// tfjs's buffer pool, kept from growing while it holds buffers nobody uses.
//
// tfjs-webgpu's BufferManager keeps every buffer a tensor gave back, keyed by exact size and
// usage, and never frees one: a request of a size it holds none of makes a new buffer, however
// many of other sizes sit idle. A step op by op (the first step of a shape, before it is
// recorded) gives back buffers of some sizes and asks for others, so the pool ended a step far
// above what was ever in use at once: for a 2-layer, 768-wide BERT's training step at 32 x 128
// tokens, 1108 MiB held where at most 745 were in use (928 from the second step on, with AdamW's
// moments).
//
// Here a request the pool cannot serve from its own size may make a new buffer only within the
// most the device has held so far (its high-water mark); beyond that, idle buffers of other sizes
// are destroyed first (the smallest one big enough, else the biggest, until the new one fits). So
// the high-water mark stays at about the most ever in use at once.
//
// The price: the sizes kept do not serve every phase of a step (the forward pass asks for
// activations, the backward pass for gradients of other sizes), so a step run op by op again and
// again destroys and makes some buffers each time (the 768-wide step: about 100 a step, where tfjs
// made 4). A recorded step makes none, and on webgpu only a shape's first two steps run op by
// op (BERT_PRUNER_RECORD=0 runs them all so).
//
// The mark counts every buffer the device made (`deviceBytes`, from createBuffer to destroy();
// webgpu-record.ts wraps the device), the recordings' own and their shared scratch blocks too.
// During a capture the buffers the step gave back (which serve its later requests of their size)
// are idle too, and may go the same way: each of their lives is scratch, moved onto the arena when
// the capture ends (webgpu-record.ts refuses the recording otherwise). So a capture holds about
// what the step op by op holds (the 768-wide step: 928 MiB, where 1080 without).
//
// The recorders' arena (their recordings' scratch blocks) is idle too between replays, and as big as
// a step needs: a new length's first steps (op by op, then captured) would need as much again
// beside it. So in a recorder's pass op by op (allowEvictions), where idle buffers are not enough,
// the arenas are evicted (their blocks destroyed, the biggest first; the recorder drains the queue
// before such a pass, so that their memory is free by then), and a replay makes its blocks again
// first, making room with idle buffers the same way (makeRoom). Elsewhere arenas are kept:
// a small tensor between replays must not cost the next replay its blocks.
//
// A buffer given back to the pool is idle: tfjs gives back a buffer an encoded program still uses
// only after the submit (backend_webgpu.ts tensorDataPendingDisposal), and a destroyed buffer's
// memory is freed by Dawn once the GPU is done with it.
import type { WebGpuBackendLike } from './webgpu-types';

/* eslint-disable @typescript-eslint/no-explicit-any -- WebGPU's types are not in our tsconfig */
type GPUBuffer = any;

/** The parts of tfjs-webgpu 4.22.0's BufferManager used here. */
interface PoolLike {
  acquireBuffer(size: number, usage: number, mapped?: boolean, reuse?: boolean): GPUBuffer;
  freeBuffers: Map<string, GPUBuffer[]>;
  numFreeBuffers: number;
  numBytesAllocated: number;
}

/** Idle buffers the bound has destroyed (for tests). */
export const poolStats = { destroyed: 0 };

/** tfjs's pool key: a buffer of this size and usage serves any request for the same. */
export function bufferKey(size: number, usage: number): string {
  return `${size}_${usage}`;
}

/**
 * Bytes of the device's buffers, counted from createBuffer until destroy() (Dawn frees the memory
 * once the GPU has finished with the buffer): now, the most since resetDevicePeak, and the most
 * ever (the pool's high-water mark).
 */
const held = { now: 0, peak: 0, most: 0 };

/** Count a buffer the device made, until its destroy(). */
export function countBuffer(buf: GPUBuffer, size: number): void {
  held.now += size;
  held.peak = Math.max(held.peak, held.now);
  held.most = Math.max(held.most, held.now);
  const destroy = buf.destroy;
  let gone = false;
  buf.destroy = function () {
    if (!gone) held.now -= size;
    gone = true;
    return destroy.call(this);
  };
}

export function deviceBytes(): { now: number; peak: number } {
  return { now: held.now, peak: held.peak };
}

export function resetDevicePeak(): void {
  held.peak = held.now;
}

/**
 * tfjs's idle buffers destroyed, and the high-water mark back to what is held then (tests: a
 * test's memory then depends on its own steps, not on what the tests before it held).
 */
export function resetHighWaterMark(): void {
  trim?.(Infinity);
  held.most = held.now;
}

/** Idle buffers besides tfjs's pool (a capture's given-back ones), by key, and what destroys one. */
export interface IdleBuffers {
  free: Map<string, GPUBuffer[]>;
  destroy(buf: GPUBuffer): void;
}

let extraIdle: IdleBuffers | null = null;

/** While a capture runs: its given-back buffers may be destroyed for room too (null: none). */
export function setExtraIdle(idle: IdleBuffers | null): void {
  extraIdle = idle;
}

/** Memory held but not in use now, that can be given up and made again later (the recorders' arena). */
export interface Evictable {
  heldBytes(): number;
  /** Destroys what it holds; returns the bytes freed. */
  evict(): number;
}

const evictables = new Set<Evictable>();
/** Evictions are allowed only within a recorder's step run op by op (see allowEvictions). */
let evictDepth = 0;

/**
 * Run fn (a recorder's pass op by op: its first sighting, or its capture) with arenas evictable:
 * where tfjs's idle buffers do not make room, an arena's memory serves the pass instead of new
 * memory beyond the high-water mark. Elsewhere (a tensor between replays, work no recorder runs)
 * arenas are kept, so that replays do not make their blocks again step after step.
 */
export function allowEvictions<T>(fn: () => T): T {
  evictDepth++;
  try {
    return fn();
  } finally {
    evictDepth--;
  }
}

/** Bytes the registered evictables hold now. */
export function evictableBytes(): number {
  let n = 0;
  for (const e of evictables) n += e.heldBytes();
  return n;
}

/** Once registered, e may be evicted where idle buffers do not make room enough. */
export function registerEvictable(e: Evictable): void {
  evictables.add(e);
}

/** Destroys tfjs's idle buffers (and others set idle) for `over` bytes; null before boundPool. */
let trim: ((over: number) => number) | null = null;

/**
 * Before `size` bytes are made outside tfjs's pool (an arena's block): idle buffers are destroyed
 * so that the device stays within its high-water mark, where they are enough.
 */
export function makeRoom(size: number): void {
  const over = overMark(size);
  if (over > 0) trim?.(over);
}

/** Bytes by which `size` more would take the device past its high-water mark. */
function overMark(size: number): number {
  return held.now + size - held.most;
}

/**
 * Idle buffers to destroy so that `need` more bytes fit: the smallest single one of at least
 * `need`, else the biggest, repeatedly. Returns [key, buffer] pairs.
 */
export function pickIdle(free: Map<string, { size: number }[]>, need: number): [string, { size: number }][] {
  const all: [string, { size: number }][] = [];
  for (const [k, bufs] of free) for (const buf of bufs) all.push([k, buf]);
  all.sort((a, b) => a[1].size - b[1].size);
  const out: [string, { size: number }][] = [];
  while (need > 0 && all.length > 0) {
    let i = all.findIndex(([, buf]) => buf.size >= need);
    if (i < 0) i = all.length - 1;
    const [p] = all.splice(i, 1);
    out.push(p);
    need -= p[1].size;
  }
  return out;
}

/** Bound tfjs's pool as the header says (once per backend). */
export function boundPool(b: WebGpuBackendLike): void {
  const bm = b.bufferManager as unknown as PoolLike;
  if (!(bm.freeBuffers instanceof Map) || typeof bm.numBytesAllocated !== 'number') return;
  const acquire = bm.acquireBuffer.bind(bm);
  const fromTfjs = (buf: GPUBuffer) => {
    bm.numFreeBuffers--;
    bm.numBytesAllocated -= buf.size;
    buf.destroy();
  };
  /** Destroys idle buffers for `over` bytes, the smallest fitting one first; returns the bytes still short. */
  trim = (over: number) => {
    const idle = new Map<string, GPUBuffer[]>();
    for (const [k, bufs] of bm.freeBuffers) idle.set(`t${k}`, bufs);
    if (extraIdle) for (const [k, bufs] of extraIdle.free) idle.set(`x${k}`, bufs);
    for (const [k, buf] of pickIdle(idle, over)) {
      const list = idle.get(k)!;
      list.splice(list.indexOf(buf), 1);
      poolStats.destroyed++;
      over -= buf.size;
      if (k.startsWith('t')) fromTfjs(buf);
      else extraIdle!.destroy(buf);
    }
    return over;
  };
  bm.acquireBuffer = (size: number, usage: number, mapped = false, reuse = true) => {
    const own = bm.freeBuffers.get(bufferKey(size, usage));
    let over = overMark(size);
    if ((!reuse || !own?.length) && over > 0) {
      over = trim!(over);
      // Still short, in a recorder's pass op by op: the arenas, biggest first (made again before
      // their next replay).
      const big = evictDepth > 0 ? [...evictables].sort((a, b) => b.heldBytes() - a.heldBytes()) : [];
      for (const e of big) {
        if (over <= 0) break;
        if (e.heldBytes() > 0) over -= e.evict();
      }
    }
    return acquire(size, usage, mapped, reuse);
  };
}
