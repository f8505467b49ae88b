// The plan that shares recordings' scratch buffers (backend/webgpu-scratch.ts): which uses may share
// a slot, best fit, new slots only where needed, slots destroyed when no recording uses them, and
// an arena grown loose planned afresh, biggest recording first.
import { describe, expect, it } from 'vitest';
import {
  Arena,
  planAll,
  planScratch,
  REPACK,
  slotBytes,
  slotSize,
  type ScratchUse,
  type Tenant,
} from '../src/engine/backend/webgpu-scratch';

const S = 4; // a usage
const use = (size: number, first: number, last: number, usage = S): ScratchUse => ({ size, usage, first, last });

describe('planScratch', () => {
  it('uses one after another share a slot; overlapping or touching ones do not', () => {
    // 0..2 then 3..5: one slot; 5..6 touches 3..5 (op 5 reads one and writes the other): a second
    const { slotOf, added } = planScratch([use(1024, 0, 2), use(1024, 3, 5), use(1024, 5, 6)], []);
    expect(slotOf[0]).toBe(slotOf[1]);
    expect(slotOf[2]).not.toBe(slotOf[1]);
    expect(added).toHaveLength(2);
  });

  it('a slot serves only its usage and uses no bigger than it', () => {
    const slot = [{ size: 1024, usage: S }];
    expect(planScratch([use(1024, 0, 0, 8)], slot).added).toEqual([{ size: 1024, usage: 8 }]);
    expect(planScratch([use(4096, 0, 0)], slot).added).toEqual([{ size: 4096, usage: S }]);
    expect(planScratch([use(1000, 0, 0)], slot)).toEqual({ slotOf: [0], added: [] });
  });

  it('biggest first: a small use fills a big slot between its uses, not a slot of its own', () => {
    // first op first would give the small use (0..1) a slot, then need two more for the big ones
    const { slotOf, added } = planScratch([use(1000, 0, 1), use(4096, 2, 3), use(4096, 1, 2)], []);
    expect(added).toEqual([
      { size: 4096, usage: S },
      { size: 4096, usage: S },
    ]);
    expect(slotOf[0]).toBe(slotOf[1]);
  });

  it('best fit: the smallest free slot that holds the use; new slots only where none is free', () => {
    const slots = [
      { size: 8192, usage: S },
      { size: 2048, usage: S },
      { size: 4096, usage: S },
    ];
    const { slotOf, added } = planScratch([use(2000, 0, 3), use(2000, 1, 3), use(2000, 2, 3), use(2000, 3, 4)], slots);
    expect(slotOf.slice(0, 3)).toEqual([1, 2, 0]);
    expect(slotOf[3]).toBe(3); // all three busy at op 3: a new one
    expect(added).toEqual([{ size: slotSize(2000), usage: S }]);
  });

  it('a big slot is not spent on a small use (at most 4x, or 1 MiB more)', () => {
    const big = { size: 64 * 2 ** 20, usage: S };
    expect(planScratch([use(8 * 2 ** 20, 0, 0)], [big]).added).toHaveLength(1);
    expect(planScratch([use(16 * 2 ** 20, 0, 0)], [big]).added).toHaveLength(0);
    expect(planScratch([use(1000, 0, 0)], [{ size: 2 ** 20, usage: S }]).added).toHaveLength(0);
  });

  it('the order the uses come in does not matter', () => {
    const uses = [use(100, 4, 5), use(100, 0, 1), use(100, 2, 3)];
    const { slotOf, added } = planScratch(uses, []);
    expect(added).toHaveLength(1);
    expect(new Set(slotOf).size).toBe(1);
  });

  it('slot sizes: rounded up to an eighth of the power of two, at least 256 bytes, never past the limit', () => {
    expect(slotSize(100)).toBe(256);
    expect(slotSize(1025)).toBe(1280); // 2048 / 8 = 256
    expect(slotSize(9 * 2 ** 20)).toBe(10 * 2 ** 20); // 16 MiB / 8 = 2 MiB
    expect(slotSize(9 * 2 ** 20, 9.5 * 2 ** 20)).toBe(9.5 * 2 ** 20);
    expect(slotSize(9 * 2 ** 20, 2 ** 20)).toBe(9 * 2 ** 20); // the use itself is never cut
    for (let n = 1; n < 5e6; n = Math.ceil(n * 1.37)) {
      const s = slotSize(n);
      expect(s).toBeGreaterThanOrEqual(n);
      expect(s).toBeLessThanOrEqual(Math.max(n + 255, n * 1.25));
    }
  });

  it('a step alone: its peak, not its sum', () => {
    const chain = Array.from({ length: 10 }, (_, i) => use(4096, i, i + 1)); // each read by the next op
    expect(planScratch(chain, []).added).toEqual([
      { size: 4096, usage: S },
      { size: 4096, usage: S },
    ]);
  });
});

/** A recording's stand-in: its uses, and the buffers it was last bound to. */
function tenant(uses: ScratchUse[]): Tenant<number> & { bound: number[][] } {
  const bound: number[][] = [];
  return { uses, bound, bind: (bufs) => bound.push(bufs) };
}

/** An arena over numbered buffers, with what it made and destroyed. */
function numbered(): { arena: Arena<number>; made: number[]; destroyed: number[] } {
  const made: number[] = [];
  const destroyed: number[] = [];
  const arena = new Arena<number>(
    () => (made.push(made.length + 1), made.length),
    (b) => destroyed.push(b),
  );
  return { arena, made, destroyed };
}

const M = 2 ** 20;
/** Two buffers of x MiB, alive at op 1 together (two slots). */
const pair = (x: number, y = x) => [use(x * M, 0, 1), use(y * M, 1, 2)];

describe('planAll', () => {
  it("biggest recording first: its slots are its own plan's, and the others fit in them", () => {
    const [small, big] = [pair(3), pair(8)];
    const p = planAll([small, big]);
    expect(p.slots).toEqual(planScratch(big, []).added);
    expect(p.slotOf[1]).toEqual(planScratch(big, []).slotOf);
    expect(new Set(p.slotOf[0]).size).toBe(2);
    // in the order they came (small first), the big one's slots are added beside the small one's
    const inOrder = planScratch(big, planScratch(small, []).added).added;
    expect(slotBytes(inOrder)).toBe(16 * M);
    expect(6 * M + 16 * M).toBeGreaterThan(REPACK * slotBytes(p.slots));
  });
});

describe('Arena', () => {
  it('recordings share its slots; a slot goes with the last recording using it', () => {
    const { arena, made, destroyed } = numbered();
    const a = tenant([use(4096, 0, 1), use(4096, 2, 3)]);
    arena.add(a);
    expect(made).toEqual([1]);
    expect(a.bound).toEqual([[1, 1]]);
    const b = tenant([use(4096, 0, 2), use(2048, 1, 3)]); // two at once: one more slot
    arena.add(b);
    expect(made).toEqual([1, 2]);
    expect(new Set(b.bound[0])).toEqual(new Set([1, 2]));
    expect(arena.bytes()).toBe(4096 + 2048);
    expect(arena.repacks).toBe(0); // a fresh plan would be no smaller
    arena.remove(a);
    expect(destroyed).toEqual([]);
    arena.remove(b);
    arena.remove(b); // twice: nothing more
    expect(destroyed.sort()).toEqual([1, 2]);
    expect(arena.slots).toEqual([]);
    expect(arena.bytes()).toBe(0);
  });

  it('a repack binds every tenant to the new slots, destroys the old ones, and refcounts them anew', () => {
    const { arena, made, destroyed } = numbered();
    const [s1, s2, big] = [tenant(pair(3)), tenant(pair(2, 2.5)), tenant(pair(8))];
    arena.add(s1);
    arena.add(s2); // fits in s1's slots
    expect(made.length).toBe(2);
    expect(arena.repacks).toBe(0);
    arena.add(big); // 6 + 16 MiB, against 16 planned afresh: repacked
    expect(arena.repacks).toBe(1);
    expect(arena.bytes()).toBe(16 * M);
    // what was made before the repack is destroyed; what the repack made is the arena
    expect(made.length).toBe(2 + 2 + 2);
    expect(destroyed.sort((x, y) => x - y)).toEqual([1, 2, 3, 4]);
    expect(arena.slots.map((s) => s.buf)).toEqual([5, 6]);
    const live = new Set(arena.slots.map((s) => s.buf));
    for (const t of [s1, s2, big]) {
      const bufs = t.bound.at(-1)!;
      expect(bufs.every((b) => live.has(b))).toBe(true);
      // still a valid plan: a use gets a buffer at least its size, and uses alive at once differ
      bufs.forEach((b, i) => expect(arena.slots.find((s) => s.buf === b)!.size).toBeGreaterThanOrEqual(t.uses[i].size));
      for (let i = 0; i < bufs.length; i++)
        for (let j = i + 1; j < bufs.length; j++)
          if (t.uses[i].first <= t.uses[j].last && t.uses[j].first <= t.uses[i].last) expect(bufs[i]).not.toBe(bufs[j]);
    }
    // references counted on the new slots: all go only with the last tenant
    arena.remove(big);
    arena.remove(s1);
    expect(arena.slots.length).toBeGreaterThan(0);
    arena.remove(s2);
    expect(arena.slots).toEqual([]);
    expect(destroyed.length).toBe(made.length);
  });
});
