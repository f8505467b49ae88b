// Scratch memory shared by the recordings of every recorder (webgpu-record.ts: one arena).
//
// A recorded step names a few hundred buffers of its own: the activations, gradients and
// temporaries tfjs made during the step and released before it ended. Kept as they were, every
// recording pins all of them (the step's whole memory traffic, not its peak), so a cache of the
// tens of sequence lengths a training run meets held several GiB for a model the size of gaiic's.
// But such a buffer is written by the step's programs before they read it, and replays run one
// after another on the queue, so:
//
// - within a recording, two of them whose uses do not overlap can be the same memory (the step's
//   peak, not its sum);
// - across recordings, all of them can be the same memory (the cache's largest peak, roughly, not
//   the sum over its keys).
//
// The memory is a few big buffers (blocks), and a use is a range of one at a 256-byte aligned
// offset, bound with its own size (as TFLite's arena places tensors at offsets). planScratch
// places each scratch buffer of a new recording: biggest first, in the smallest gap among the
// uses of the same block alive at the same time (a block grows only where none fits). WebGPU
// tracks a buffer's usage as a whole within a dispatch (a buffer written by it may be bound to
// nothing else there) and copies within one buffer are refused, so a use an op writes and the
// other uses of that op are placed in different blocks (`apart`).
//
// Arena keeps the blocks and the recordings using them (its tenants), and destroys a block when
// the last one goes. A recording that does not fit in the blocks there are adds blocks of its own
// beside them; when the arena has grown past REPACK times what its tenants need planned afresh,
// biggest first, it is planned afresh and every tenant is pointed at the new blocks (repack).
// Between replays the blocks are idle: they may be evicted (destroyed, the plan kept) for a pass
// run op by op (webgpu-pool.ts), and are made again, and a tenant bound to them again, before
// its next replay (ensure).

/** A scratch buffer of a recording (a life of one of tfjs's): size, usage, and the first and last op using it. */
export interface ScratchUse {
  size: number;
  usage: number;
  first: number;
  last: number;
}

/** A block: one buffer, holding uses at offsets. */
export interface BlockSpec {
  size: number;
  usage: number;
}

/** Where a use lives: a block (an index) and the offset in it. */
export interface Place {
  block: number;
  offset: number;
}

/** Offsets are multiples of this (the most minStorageBufferOffsetAlignment may be). */
export const ALIGN = 256;

const align = (n: number) => Math.ceil(n / ALIGN) * ALIGN;

/** A use placed in a block: bytes [offset, end), ops [first, last]. */
interface Placed {
  offset: number;
  end: number;
  first: number;
  last: number;
}

interface Open {
  size: number;
  usage: number;
  /** Fixed: a block there already (its size is its buffer's); else made by this plan, grown as needed. */
  fixed: boolean;
  placed: Placed[];
}

/**
 * The place of each use (same order as uses): block j < blocks.length is a block there already,
 * blocks.length + k the k-th of `added`, which the caller creates. Uses alive at the same op never
 * overlap in a block; a use never shares a block with one of `apart[i]` (the uses an op names
 * together with it, where one of them is written). Blocks there already keep their size and serve
 * only uses of their usage; an added block's usage is all its uses', and its size at most limit.
 *
 * Greedy by size (TFLite's arena planner, greedy by size for offsets): the biggest uses first,
 * each where it grows the blocks least, then in the smallest gap it fits. Onto blocks there
 * already, that is tried against the recording's own plan moved whole into them (each of its
 * blocks into the smallest free one that holds it, as it is): a shorter length's plan is a
 * smaller copy of a longer one's, and fits in its blocks so where greedy placing, use by use,
 * can strand a big use. The one adding fewer bytes is taken.
 */
export function planScratch(
  uses: readonly ScratchUse[],
  apart: readonly (readonly number[])[],
  blocks: readonly BlockSpec[],
  limit = Infinity,
  /** The recording's own plan (onto no blocks), where the caller has it already. */
  own?: { place: Place[]; added: BlockSpec[] },
): { place: Place[]; added: BlockSpec[] } {
  const greedy = placeGreedy(uses, apart, blocks, limit);
  if (blocks.length === 0 || greedy.added.length === 0) return greedy;
  const moved = moveWhole(own ?? placeGreedy(uses, apart, [], limit), blocks);
  return blockBytes(moved.added) < blockBytes(greedy.added) ? moved : greedy;
}

/**
 * A plan of its own (blocks added only) moved into blocks there: each of its blocks, biggest
 * first, into the smallest free one that holds it (else added).
 */
function moveWhole(own: { place: Place[]; added: BlockSpec[] }, blocks: readonly BlockSpec[]) {
  const to = new Array<number>(own.added.length);
  const taken = new Set<number>();
  const added: BlockSpec[] = [];
  const order = own.added.map((_, k) => k).sort((a, b) => own.added[b].size - own.added[a].size || a - b);
  for (const k of order) {
    const b = own.added[k];
    let best = -1;
    blocks.forEach((f, j) => {
      if (taken.has(j) || f.size < b.size || (b.usage & ~f.usage) !== 0) return;
      if (best < 0 || f.size < blocks[best].size) best = j;
    });
    if (best >= 0) taken.add((to[k] = best));
    else to[k] = blocks.length + added.push(b) - 1;
  }
  return { place: own.place.map((p) => ({ block: to[p.block], offset: p.offset })), added };
}

function placeGreedy(
  uses: readonly ScratchUse[],
  apart: readonly (readonly number[])[],
  blocks: readonly BlockSpec[],
  limit: number,
): { place: Place[]; added: BlockSpec[] } {
  const all: Open[] = blocks.map((b) => ({ size: b.size, usage: b.usage, fixed: true, placed: [] }));
  const place = new Array<Place>(uses.length);
  const order = uses
    .map((_, i) => i)
    .sort((a, b) => uses[b].size - uses[a].size || uses[a].first - uses[b].first || a - b);
  for (const i of order) {
    const u = uses[i];
    const size = align(Math.max(1, u.size));
    if (size > limit) throw new Error(`a scratch buffer of ${u.size} bytes is beyond the device's largest (${limit})`);
    const barred = new Set<number>();
    for (const k of apart[i] ?? []) if (place[k]) barred.add(place[k].block);
    let best: { block: number; offset: number; grow: number; waste: number } | null = null;
    all.forEach((b, j) => {
      if (barred.has(j) || (b.fixed && (u.usage & ~b.usage) !== 0)) return;
      const c = fit(b, u, size, limit);
      if (c && (!best || c.grow < best.grow || (c.grow === best.grow && c.waste < best.waste)))
        best = { block: j, ...c };
    });
    const at: { block: number; offset: number } = best ?? { block: all.length, offset: 0 };
    if (at.block === all.length) all.push({ size: 0, usage: u.usage, fixed: false, placed: [] });
    const b = all[at.block];
    b.placed.push({ offset: at.offset, end: at.offset + size, first: u.first, last: u.last });
    if (!b.fixed) {
      b.size = Math.max(b.size, at.offset + size);
      b.usage |= u.usage;
    }
    place[i] = { block: at.block, offset: at.offset };
  }
  return { place, added: all.slice(blocks.length).map(({ size, usage }) => ({ size, usage })) };
}

/**
 * The best offset for a use in a block: the smallest gap among the uses there alive at the same
 * time that holds it, else past the last of them. grow: bytes the block grows by (a fixed block
 * never grows); waste: the gap's bytes left over. null: it does not fit.
 */
function fit(
  b: Open,
  u: ScratchUse,
  size: number,
  limit: number,
): { offset: number; grow: number; waste: number } | null {
  const alive = b.placed.filter((p) => p.first <= u.last && u.first <= p.last).sort((x, y) => x.offset - y.offset);
  let best: { offset: number; grow: number; waste: number } | null = null;
  let prev = 0;
  for (const p of alive) {
    const gap = p.offset - prev;
    if (gap >= size && (!best || gap - size < best.waste)) best = { offset: prev, grow: 0, waste: gap - size };
    prev = Math.max(prev, p.end);
  }
  if (best) return best;
  const end = prev + size;
  if (b.fixed) return end <= b.size ? { offset: prev, grow: 0, waste: b.size - end } : null;
  if (end > limit) return null;
  return { offset: prev, grow: Math.max(0, end - b.size), waste: Math.max(0, b.size - end) };
}

/** Bytes of blocks. */
export function blockBytes(blocks: readonly BlockSpec[]): number {
  let n = 0;
  for (const s of blocks) n += s.size;
  return n;
}

/** The most bytes a recording's uses hold at once: no plan of them needs less. */
export function peakBytes(uses: readonly ScratchUse[]): number {
  const events: [number, number][] = [];
  for (const u of uses) events.push([u.first, align(u.size)], [u.last + 1, -align(u.size)]);
  events.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let now = 0;
  let most = 0;
  for (const [, d] of events) most = Math.max(most, (now += d));
  return most;
}

/** What a recording asks of the arena: its uses and which of them may not share a block. */
export interface ScratchNeed {
  readonly uses: readonly ScratchUse[];
  readonly apart: readonly (readonly number[])[];
}

/**
 * A fresh arena for these recordings: planned biggest first (by their bytes), so that the blocks
 * are the biggest step's and the others fit in them where they can. place[k]: the places of the
 * uses of needs[k].
 */
export function planAll(needs: readonly ScratchNeed[], limit = Infinity): { place: Place[][]; blocks: BlockSpec[] } {
  const bytes = needs.map((n) => n.uses.reduce((s, x) => s + x.size, 0));
  const order = needs.map((_, k) => k).sort((a, b) => bytes[b] - bytes[a] || a - b);
  const blocks: BlockSpec[] = [];
  const place: Place[][] = new Array(needs.length);
  for (const k of order) {
    const p = planScratch(needs[k].uses, needs[k].apart, blocks, limit);
    blocks.push(...p.added);
    place[k] = p.place;
  }
  return { place, blocks };
}

/** An arena this much bigger than its tenants planned afresh is repacked. */
export const REPACK = 1.25;

/** A block of the arena: its buffer (null while evicted), and how many recordings use it. */
export interface Block<B> extends BlockSpec {
  buf: B | null;
  refs: number;
}

/** A recording using the arena: what it needs, and how to point its ops at their places (one per use). */
export interface Tenant<B> extends ScratchNeed {
  bind(places: { buf: B; offset: number }[]): void;
}

interface Lease<B> {
  place: { block: Block<B>; offset: number }[];
  used: Block<B>[];
  /** The buffers of `used` it was last bound to (none: not bound since its blocks were made anew). */
  bound: (B | null)[];
  /** Bytes of the blocks it would need alone. */
  alone: number;
}

/**
 * The scratch blocks of the recorders, and their recordings using them. make and destroy are the
 * device's. The blocks may be evicted (destroyed, for room, while no replay is being encoded):
 * a tenant's blocks are made again, and it is bound to them again, before its next replay (ensure).
 */
export class Arena<B> {
  readonly blocks: Block<B>[] = [];
  private readonly tenants = new Map<Tenant<B>, Lease<B>>();
  repacks = 0;
  evictions = 0;

  constructor(
    private readonly make: (s: BlockSpec) => B,
    private readonly destroy: (b: B) => void,
    /** The device's largest buffer: no block is bigger. */
    private readonly limit: () => number = () => Infinity,
  ) {}

  /** Bytes of all blocks (as planned, held or evicted). */
  bytes(): number {
    return blockBytes(this.blocks);
  }

  /** Bytes of the blocks whose buffers are held now. */
  heldBytes(): number {
    let n = 0;
    for (const b of this.blocks) if (b.buf !== null) n += b.size;
    return n;
  }

  /** Bytes of the blocks these tenants use (each block once). */
  usedBytes(ts: Iterable<Tenant<B>>): number {
    const used = new Set<Block<B>>();
    for (const t of ts) for (const b of this.tenants.get(t)?.used ?? []) used.add(b);
    return blockBytes([...used]);
  }

  /** Bytes of the blocks these tenants would need planned afresh, without the others. */
  plannedBytes(ts: readonly Tenant<B>[]): number {
    return blockBytes(planAll(ts, this.limit()).blocks);
  }

  /** Bytes of the blocks a tenant would need alone (0 for one not here). */
  aloneBytes(t: Tenant<B>): number {
    return this.tenants.get(t)?.alone ?? 0;
  }

  /**
   * A new tenant: its uses get places (in the blocks there are, and new ones), and it is bound to
   * them. Where new blocks made the arena loose (past REPACK times a fresh plan), every tenant is
   * planned afresh onto new blocks and bound again, and the old blocks are destroyed.
   */
  add(t: Tenant<B>): void {
    const own = planScratch(t.uses, t.apart, [], this.limit());
    const { place, added } =
      this.blocks.length === 0 ? own : planScratch(t.uses, t.apart, this.blocks, this.limit(), own);
    const alone = blockBytes(own.added);
    for (const spec of added) this.blocks.push({ ...spec, buf: null, refs: 0 });
    this.lease(t, place, alone);
    if (!(added.length > 0 && this.tenants.size > 1 && this.repackIfLoose())) this.ensure(t);
  }

  /** Before a tenant's replay: its blocks made where evicted, and it bound to them where not yet. */
  ensure(t: Tenant<B>): void {
    const l = this.tenants.get(t);
    if (!l) return;
    for (const b of l.used) b.buf ??= this.make(b);
    if (l.used.every((b, k) => b.buf === l.bound[k])) return;
    t.bind(l.place.map((p) => ({ buf: p.block.buf!, offset: p.offset })));
    l.bound = l.used.map((b) => b.buf);
  }

  /** Destroy every block's buffer (the tenants keep their places); returns the bytes freed. */
  evict(): number {
    let n = 0;
    for (const b of this.blocks) {
      if (b.buf === null) continue;
      this.destroy(b.buf);
      b.buf = null;
      n += b.size;
    }
    if (n > 0) this.evictions++;
    return n;
  }

  /** A tenant gone: a block no tenant uses is destroyed. */
  remove(t: Tenant<B>): void {
    const used = this.tenants.get(t)?.used;
    if (!used) return;
    this.tenants.delete(t);
    for (const b of used) {
      if (--b.refs > 0) continue;
      this.blocks.splice(this.blocks.indexOf(b), 1);
      if (b.buf !== null) this.destroy(b.buf);
    }
  }

  /** Repack where the blocks come to more than REPACK times a fresh plan's; true where it did. */
  repackIfLoose(): boolean {
    // A fresh plan seldom needs less than the biggest tenant alone: within REPACK of that, the
    // arena is taken as not loose, and planAll (some hundred ms for 15 recordings of a few
    // thousand uses, BERT-base's) is skipped.
    let biggest = 0;
    for (const { alone } of this.tenants.values()) biggest = Math.max(biggest, alone);
    if (this.bytes() <= REPACK * biggest) return false;
    const ts = [...this.tenants.entries()];
    const plan = planAll(
      ts.map(([t]) => t),
      this.limit(),
    );
    if (this.bytes() <= REPACK * blockBytes(plan.blocks)) return false;
    // The old blocks go first (a replay in flight keeps its buffers until the device is done with
    // them), so that the old and the new arena are not both held longer than that.
    this.evict();
    this.blocks.splice(0);
    for (const spec of plan.blocks) this.blocks.push({ ...spec, buf: null, refs: 0 });
    this.tenants.clear();
    ts.forEach(([t, { alone }], k) => this.lease(t, plan.place[k], alone));
    for (const [t] of ts) this.ensure(t);
    this.repacks++;
    return true;
  }

  private lease(t: Tenant<B>, place: Place[], alone: number): void {
    const at = place.map((p) => ({ block: this.blocks[p.block], offset: p.offset }));
    const used = [...new Set(at.map((p) => p.block))];
    for (const b of used) b.refs++;
    this.tenants.set(t, { place: at, used, bound: [], alone });
  }
}
