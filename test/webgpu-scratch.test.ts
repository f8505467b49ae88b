// The plan that shares recordings' scratch buffers (backend/webgpu-scratch.ts): which uses may share
// a slot, best fit, new slots only where needed, and slots destroyed when no recording uses them.
import { describe, expect, it } from 'vitest';
import { Arena, planScratch, slotSize, type ScratchUse } from '../src/engine/backend/webgpu-scratch';

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
    const { slotOf, added } = planScratch([use(1024, 0, 0), use(1024, 1, 1, 8), use(4096, 2, 2)], []);
    expect(new Set(slotOf).size).toBe(3);
    expect(added.map((s) => s.usage)).toEqual([S, 8, S]);
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

  it('the order of the uses does not matter: they are taken by first op', () => {
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

describe('Arena', () => {
  it('recordings share its slots; a slot goes with the last recording using it', () => {
    const made: number[] = [];
    const destroyed: number[] = [];
    let n = 0;
    const arena = new Arena<number>(
      () => (made.push(++n), n),
      (b) => destroyed.push(b),
    );
    const a = arena.assign([use(4096, 0, 1), use(4096, 2, 3)]);
    expect(made).toEqual([1]);
    expect(a.bufs).toEqual([1, 1]);
    const b = arena.assign([use(4096, 0, 2), use(2048, 1, 3)]); // two at once: one more slot
    expect(made).toEqual([1, 2]);
    expect(new Set(b.bufs)).toEqual(new Set([1, 2]));
    expect(arena.bytes()).toBe(4096 + 2048);
    arena.release(a.used);
    expect(destroyed).toEqual([]);
    arena.release(b.used);
    expect(destroyed.sort()).toEqual([1, 2]);
    expect(arena.slots).toEqual([]);
    expect(arena.bytes()).toBe(0);
  });
});
