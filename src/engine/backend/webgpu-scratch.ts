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
// (biggest first, best fit among the slots free over its uses, a new slot where none is). Arena
// keeps the slots and the recordings using them (its tenants), and destroys a slot when the last
// one goes. A recording planned onto the slots of shorter ones adds slots of its own beside
// theirs; when the arena has grown past REPACK times what its tenants need planned afresh, biggest
// first, it is planned afresh and every tenant is pointed at the new slots (repack).

import { coarseBucket } from '../data/masking';

/** A scratch buffer of a recording (a life of one of tfjs's): size, usage, and the first and last op using it. */
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
 * same buffer twice), and a use gets a slot of its usage at least as big as it.
 *
 * Greedy by size (as TFLite's arena planner does for shared objects): the biggest uses are placed
 * first, each in the smallest slot free over its ops, so that the big slots are made by the big
 * uses and the small uses fill them in between; a new slot only where none is free.
 */
export function planScratch(
  uses: ScratchUse[],
  slots: readonly SlotSpec[],
  limit = Infinity,
): { slotOf: number[]; added: SlotSpec[] } {
  const all: SlotSpec[] = [...slots];
  /** The uses placed in each slot so far, as [first, last] op. */
  const busy: [number, number][][] = all.map(() => []);
  const free = (j: number, u: ScratchUse) => busy[j].every(([f, l]) => l < u.first || u.last < f);
  const slotOf = new Array<number>(uses.length);
  const order = uses
    .map((_, i) => i)
    .sort((a, b) => uses[b].size - uses[a].size || uses[a].first - uses[b].first || a - b);
  for (const i of order) {
    const u = uses[i];
    let best = -1;
    for (let j = 0; j < all.length; j++) {
      const s = all[j];
      if (s.usage !== u.usage || s.size < u.size || s.size > Math.max(MAX_WASTE * u.size, u.size + MiB)) continue;
      if ((best < 0 || s.size < all[best].size) && free(j, u)) best = j;
    }
    if (best < 0) {
      best = all.length;
      all.push({ size: slotSize(u.size, limit), usage: u.usage });
      busy.push([]);
    }
    busy[best].push([u.first, u.last]);
    slotOf[i] = best;
  }
  return { slotOf, added: all.slice(slots.length) };
}

/** Bytes of slots. */
export function slotBytes(slots: readonly SlotSpec[]): number {
  let n = 0;
  for (const s of slots) n += s.size;
  return n;
}

/**
 * A fresh arena for these recordings' uses: planned biggest first (by their bytes), so that the
 * slots are the biggest step's and the others fit in them where they can. slotOf[k]: the slot of
 * each use of uses[k].
 */
export function planAll(uses: ScratchUse[][], limit = Infinity): { slotOf: number[][]; slots: SlotSpec[] } {
  const bytes = uses.map((u) => u.reduce((n, x) => n + x.size, 0));
  const order = uses.map((_, k) => k).sort((a, b) => bytes[b] - bytes[a] || a - b);
  const slots: SlotSpec[] = [];
  const slotOf: number[][] = new Array(uses.length);
  for (const k of order) {
    const p = planScratch(uses[k], slots, limit);
    slots.push(...p.added);
    slotOf[k] = p.slotOf;
  }
  return { slotOf, slots };
}

/** An arena this much bigger than its tenants planned afresh is repacked. */
export const REPACK = 1.25;

/** A slot of the arena: a buffer, and how many recordings use it. */
export interface Slot<B> extends SlotSpec {
  buf: B;
  refs: number;
}

/** A recording using the arena: its uses, and how to point its ops at buffers (one per use). */
export interface Tenant<B> {
  readonly uses: ScratchUse[];
  bind(bufs: B[]): void;
}

/** The scratch slots of one recorder, and its recordings using them. make and destroy are the device's. */
export class Arena<B> {
  readonly slots: Slot<B>[] = [];
  /** Each tenant's slots, and the bytes of the slots it would need alone. */
  private readonly tenants = new Map<Tenant<B>, { used: Slot<B>[]; alone: number }>();
  repacks = 0;

  constructor(
    private readonly make: (s: SlotSpec) => B,
    private readonly destroy: (b: B) => void,
    /** The device's largest buffer: a slot is never rounded up past it. */
    private readonly limit: () => number = () => Infinity,
  ) {}

  /** Bytes of all slots. */
  bytes(): number {
    return slotBytes(this.slots);
  }

  /** Bytes of the slots a tenant would need alone (0 for one not here). */
  aloneBytes(t: Tenant<B>): number {
    return this.tenants.get(t)?.alone ?? 0;
  }

  /**
   * A new tenant: its uses get slots (those there are, and new ones), and it is bound to them.
   * Where new slots made the arena loose (past REPACK times a fresh plan), every tenant is
   * planned afresh onto new slots and bound again, and the old slots are destroyed.
   */
  add(t: Tenant<B>): void {
    const { slotOf, added } = planScratch(t.uses, this.slots, this.limit());
    for (const spec of added) this.slots.push({ ...spec, buf: this.make(spec), refs: 0 });
    this.take(t, slotOf, slotBytes(planScratch(t.uses, [], this.limit()).added));
    if (added.length > 0 && this.tenants.size > 1) this.repackIfLoose();
  }

  /** A tenant gone: a slot no tenant uses is destroyed. */
  remove(t: Tenant<B>): void {
    const used = this.tenants.get(t)?.used;
    if (!used) return;
    this.tenants.delete(t);
    for (const s of used) {
      if (--s.refs > 0) continue;
      const k = this.slots.indexOf(s);
      if (k >= 0) this.slots.splice(k, 1);
      this.destroy(s.buf);
    }
  }

  /** Repack where the slots come to more than REPACK times a fresh plan's; true where it did. */
  repackIfLoose(): boolean {
    // A fresh plan seldom needs less than the biggest tenant alone: within REPACK of that, the
    // arena is taken as not loose, and planAll (some hundred ms for 15 recordings of a few
    // thousand uses, BERT-base's) is skipped.
    let biggest = 0;
    for (const { alone } of this.tenants.values()) biggest = Math.max(biggest, alone);
    if (this.bytes() <= REPACK * biggest) return false;
    const ts = [...this.tenants.entries()];
    const plan = planAll(
      ts.map(([t]) => t.uses),
      this.limit(),
    );
    if (this.bytes() <= REPACK * slotBytes(plan.slots)) return false;
    // The old slots go first (a replay in flight keeps its buffers until the device is done with
    // them), so that the old and the new arena are not both held longer than that.
    for (const s of this.slots.splice(0)) this.destroy(s.buf);
    for (const spec of plan.slots) this.slots.push({ ...spec, buf: this.make(spec), refs: 0 });
    this.tenants.clear();
    ts.forEach(([t, { alone }], k) => this.take(t, plan.slotOf[k], alone));
    this.repacks++;
    return true;
  }

  private take(t: Tenant<B>, slotOf: number[], alone: number): void {
    const used = [...new Set(slotOf)].map((j) => this.slots[j]);
    for (const s of used) s.refs++;
    this.tenants.set(t, { used, alone });
    t.bind(slotOf.map((j) => this.slots[j].buf));
  }
}
