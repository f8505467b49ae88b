// Scratch buffers shared by the recordings of one recorder (webgpu-record.ts).
//
// A recorded step names a few hundred buffers of its own: the activations, gradients and
// temporaries tfjs made during the step and released before it ended. Kept as they were, every
// recording pins all of them (the step's whole memory traffic, not its peak), so a cache of the
// tens of sequence lengths a training run meets held several GiB for a model the size of gaiic's.
// But such a buffer is written by the step's programs before they read it, and replays run one
// after another on the queue, so:
//
// - within a recording, two of them whose uses do not overlap can be one buffer (the step's peak,
//   not its sum);
// - across recordings, all of them can be the same buffers (the cache's largest peak, roughly,
//   not the sum over its keys).
//
// planScratch assigns each scratch buffer of a new recording a slot of the recorder's arena
// (best fit among the slots free over its uses, a new slot where none is); Arena keeps the slots,
// counts the recordings using each and destroys a slot when the last one goes.

import { coarseBucket } from '../data/masking';

/** One scratch buffer of a recording: its size, usage, and the first and last op that use it. */
export interface ScratchUse {
  size: number;
  usage: number;
  first: number;
  last: number;
}

export interface SlotSpec {
  size: number;
  usage: number;
}

/** A slot bigger than this many times a use is left to bigger uses (unless within 1 MiB of it). */
const MAX_WASTE = 4;
const MiB = 2 ** 20;

/**
 * A new slot's size for a use of n bytes: rounded up to an eighth of n's power of two (at least
 * 256 bytes), so that the next sequence length's slightly bigger buffer fits; never past limit.
 */
export function slotSize(n: number, limit = Infinity): number {
  return Math.max(n, Math.min(limit, coarseBucket(n, 256)));
}

/**
 * The slot of each use (same order as uses): an index into slots, or slots.length + k for the
 * k-th slot of `added`, which the caller creates. Two uses share a slot only where one's last op
 * comes before the other's first (an op reading one buffer and writing another never gets the
 * same buffer twice), and a use gets a slot of its usage at least as big as it: the smallest free
 * one, so that big slots stay free for big uses.
 */
export function planScratch(
  uses: ScratchUse[],
  slots: readonly SlotSpec[],
  limit = Infinity,
): { slotOf: number[]; added: SlotSpec[] } {
  const all: SlotSpec[] = [...slots];
  const busyUntil: number[] = all.map(() => -1);
  const slotOf = new Array<number>(uses.length);
  const order = uses.map((_, i) => i).sort((a, b) => uses[a].first - uses[b].first || a - b);
  for (const i of order) {
    const u = uses[i];
    let best = -1;
    for (let j = 0; j < all.length; j++) {
      const s = all[j];
      if (s.usage !== u.usage || s.size < u.size || busyUntil[j] >= u.first) continue;
      if (s.size > Math.max(MAX_WASTE * u.size, u.size + MiB)) continue;
      if (best < 0 || s.size < all[best].size) best = j;
    }
    if (best < 0) {
      best = all.length;
      all.push({ size: slotSize(u.size, limit), usage: u.usage });
      busyUntil.push(-1);
    }
    busyUntil[best] = u.last;
    slotOf[i] = best;
  }
  return { slotOf, added: all.slice(slots.length) };
}

/** A slot of the arena: a buffer, and how many recordings use it. */
export interface Slot<B> extends SlotSpec {
  buf: B;
  refs: number;
}

/** The scratch slots of one recorder. make and destroy are the device's. */
export class Arena<B> {
  readonly slots: Slot<B>[] = [];

  constructor(
    private readonly make: (s: SlotSpec) => B,
    private readonly destroy: (b: B) => void,
  ) {}

  /** Bytes of all slots. */
  bytes(): number {
    let n = 0;
    for (const s of this.slots) n += s.size;
    return n;
  }

  /**
   * The buffer of each use, from the slots there are and new ones; the distinct slots used, each
   * counted once more as used (release them when the recording goes).
   */
  assign(uses: ScratchUse[], limit = Infinity): { bufs: B[]; used: Slot<B>[] } {
    const { slotOf, added } = planScratch(uses, this.slots, limit);
    for (const spec of added) this.slots.push({ ...spec, buf: this.make(spec), refs: 0 });
    const used = [...new Set(slotOf)].map((j) => this.slots[j]);
    for (const s of used) s.refs++;
    return { bufs: slotOf.map((j) => this.slots[j].buf), used };
  }

  /** A recording's slots, no longer used by it: a slot no recording uses is destroyed. */
  release(used: Slot<B>[]): void {
    for (const s of used) {
      if (--s.refs > 0) continue;
      const k = this.slots.indexOf(s);
      if (k >= 0) this.slots.splice(k, 1);
      this.destroy(s.buf);
    }
  }
}
