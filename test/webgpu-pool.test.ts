// webgpu-pool.ts: tfjs-webgpu's own BufferManager on a fake device, bounded by its high-water mark.
import { BufferManager } from '@tensorflow/tfjs-backend-webgpu/dist/buffer_manager';
import { describe, expect, it } from 'vitest';
import { boundPool, countBuffer, deviceBytes, pickIdle, poolStats } from '../src/engine/backend/webgpu-pool';
import type { WebGpuBackendLike } from '../src/engine/backend/webgpu-types';

const STORAGE = 0x80;

/** A device whose buffers count what is alive (and, as the wrapped device does, the pool's gauge). */
function fakeDevice(counted: boolean) {
  const d = {
    live: 0,
    peak: 0,
    createBuffer({ size, usage }: { size: number; usage: number }) {
      d.live += size;
      d.peak = Math.max(d.peak, d.live);
      let gone = false;
      const buf = {
        size,
        usage,
        destroy() {
          if (!gone) d.live -= size;
          gone = true;
        },
      };
      if (counted) countBuffer(buf, size);
      return buf;
    },
  };
  return d;
}

function pool(bounded: boolean) {
  const device = fakeDevice(bounded);
  const bm = new BufferManager(device as never);
  if (bounded) boundPool({ bufferManager: bm } as unknown as WebGpuBackendLike);
  const take = (size: number) => bm.acquireBuffer(size, STORAGE);
  const give = (b: unknown) => bm.releaseBuffer(b as never);
  return { device, bm, take, give };
}

/** A step's requests: forward 3 activations of 100, backward gives them back and asks 2 of 150, then 1 of 100. */
function step(p: ReturnType<typeof pool>) {
  const acts = [p.take(100), p.take(100), p.take(100)];
  p.give(acts.pop());
  const g1 = p.take(150);
  p.give(acts.pop());
  const g2 = p.take(150);
  p.give(acts.pop());
  p.give(g1);
  const w = p.take(100);
  for (const b of [g2, w]) p.give(b);
}

describe('tfjs-webgpu buffer pool, bounded (webgpu-pool.ts)', () => {
  it('picks the smallest idle buffer big enough, else the biggest ones', () => {
    const free = new Map([
      ['a', [{ size: 64 }, { size: 64 }]],
      ['b', [{ size: 256 }]],
      ['c', [{ size: 1024 }]],
    ]);
    expect(pickIdle(free, 200).map(([k]) => k)).toEqual(['b']);
    expect(pickIdle(free, 2000).map(([k]) => k)).toEqual(['c', 'b', 'a', 'a']);
    expect(pickIdle(free, 1100).map(([k, b]) => k + b.size)).toEqual(['c1024', 'b256']);
    expect(pickIdle(free, 0)).toEqual([]);
  });

  it('holds at most what was in use at once, a step again and again too', () => {
    const plain = pool(false);
    step(plain);
    // tfjs's own: 3 x 100 + 2 x 150 made, all kept
    expect(plain.device.peak).toBe(600);
    const p = pool(true);
    const before = poolStats.destroyed;
    step(p);
    // in use at once: at most 100 + 150 + 150
    expect(p.device.peak).toBe(400);
    expect(p.bm.numBytesAllocated).toBe(p.device.live);
    expect(poolStats.destroyed - before).toBe(2);
    // The same requests again: the sizes kept do not serve every phase of the step, so some are
    // destroyed and made again (the price of the bound), never past the most in use at once.
    for (let i = 0; i < 3; i++) step(p);
    expect(p.device.peak).toBe(400);
    expect(p.bm.numBytesAllocated).toBe(p.device.live);
    expect(deviceBytes()).toEqual({ now: p.device.live, peak: 400 });
  });
});
