// Mask generation against hand-worked cases (TextPruner's generate_mask semantics).
import { describe, expect, it } from 'vitest';
import { generateMask, maskCounts, parseMasks, schedule } from '../src/engine/prune/masks';

describe('generateMask', () => {
  const imp = [
    [0.1, 0.5, 0.3, 0.2],
    [0.9, 0.05, 0.4, 0.6],
  ];

  it('even: top-k per layer, k = total / layers', () => {
    // layer 0 keeps 0.5 and 0.3; layer 1 keeps 0.9 and 0.6
    expect(generateMask(imp, 4, { even: true })).toEqual([
      [0, 1, 1, 0],
      [1, 0, 0, 1],
    ]);
    // 5 / 2 layers = 2 per layer (floor), as TextPruner
    expect(generateMask(imp, 5, { even: true })).toEqual([
      [0, 1, 1, 0],
      [1, 0, 0, 1],
    ]);
  });

  it('uneven: global ranking', () => {
    // the 4 largest of all: 0.9, 0.6 (layer 1), 0.5 (layer 0), 0.4 (layer 1)
    expect(generateMask(imp, 4, { even: false })).toEqual([
      [0, 1, 0, 0],
      [1, 0, 1, 1],
    ]);
  });

  it('never empties a layer: its most important unit comes back', () => {
    const m = generateMask(
      [
        [0.1, 0.2, 0.05, 0.01],
        [0.9, 0.8, 0.7, 0.6],
      ],
      2,
      { even: false },
    );
    expect(m).toEqual([
      [0, 1, 0, 0],
      [1, 1, 0, 0],
    ]);
  });

  it('multiple_of: whole groups of the sorted units, ranked globally by their sums', () => {
    const ffn = [
      [0.1, 0.8, 0.7, 0.2, 0.9, 0.05], // ascending: 5,0 | 3,2 | 1,4 -> sums 0.15, 0.9, 1.7
      [0.4, 0.35, 0.01, 0.02, 0.5, 0.45], // ascending: 2,3 | 1,0 | 5,4 -> sums 0.03, 0.75, 0.95
    ];
    // keep 6 / 2 = 3 groups: 1.7 (layer 0: 1,4), 0.95 (layer 1: 5,4), 0.9 (layer 0: 3,2)
    expect(generateMask(ffn, 6, { even: false, multipleOf: 2 })).toEqual([
      [0, 1, 1, 1, 1, 0],
      [0, 0, 0, 0, 1, 1],
    ]);
    // unit-wise ranking would have picked differently (0.9 0.8 0.7 | 0.5 0.45 0.4)
    expect(generateMask(ffn, 6, { even: false })).toEqual([
      [0, 1, 1, 0, 1, 0],
      [1, 0, 0, 0, 1, 1],
    ]);
    // every layer keeps a multiple of 2
    for (const c of maskCounts(generateMask(ffn, 4, { even: false, multipleOf: 2 }))) expect(c % 2).toBe(0);
  });

  it('multiple_of with a layer size that is not a multiple: the remainder is the least important group', () => {
    // 5 units, m = 2: ascending 4 | 0,3 | 2,1 -> groups {4}=0.01, {0,3}=0.5, {2,1}=1.5
    const m = generateMask([[0.2, 0.8, 0.7, 0.3, 0.01]], 4, { even: false, multipleOf: 2 });
    expect(m).toEqual([[1, 1, 1, 1, 0]]);
  });

  it('units masked before stay masked, even when a live unit ties at 0', () => {
    const imp0 = [[0, 0, 0.5]];
    // without history the stable order prunes unit 0 first
    expect(generateMask(imp0, 2, { even: true })).toEqual([[0, 1, 1]]);
    expect(generateMask(imp0, 2, { even: true, prev: [[1, 0, 1]] })).toEqual([[1, 0, 1]]);
    expect(generateMask(imp0, 2, { even: false, prev: [[1, 0, 1]] })).toEqual([[1, 0, 1]]);
  });

  it('works on ragged layers (an already pruned model)', () => {
    expect(
      generateMask(
        [
          [0.3, 0.1],
          [0.2, 0.5, 0.4, 0.05],
        ],
        3,
        { even: false },
      ),
    ).toEqual([
      [1, 0],
      [0, 1, 1, 0],
    ]);
    // even: 4 / 2 = 2 per layer; a layer with only 2 keeps both
    expect(
      generateMask(
        [
          [0.3, 0.1],
          [0.2, 0.5, 0.4, 0.05],
        ],
        4,
        { even: true },
      ),
    ).toEqual([
      [1, 1],
      [0, 1, 1, 0],
    ]);
  });
});

describe('schedule', () => {
  it('goes from total to target in n steps, the first (remove mod n) steps removing one more', () => {
    expect(schedule(8, 2, 4)).toEqual([6, 4, 3, 2]);
    expect(schedule(24, 8, 16)).toEqual([23, 22, 21, 20, 19, 18, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8]);
    expect(schedule(10, 10, 3)).toEqual([10, 10, 10]);
    expect(schedule(2048, 768, 16).at(-1)).toBe(768);
  });
});

describe('parseMasks', () => {
  const shape = {
    heads: [4, 2],
    ffn: [3, 3],
    numHeads: 4,
    presentHeads: [
      [0, 1, 2, 3],
      [1, 3],
    ],
  };

  it('reads per-layer rows of the present units, or of all original heads', () => {
    const m = parseMasks(
      {
        head_mask: [
          [1, 0, 1, 1],
          [0, 1, 0, 1],
        ],
        ffn_mask: [
          [1, 1, 0],
          [0, 1, 1],
        ],
      },
      'm.json',
      shape,
    );
    expect(m.head).toEqual([
      [1, 0, 1, 1],
      [1, 1],
    ]); // layer 1 given by original id: heads 1 and 3 kept
    expect(m.ffn).toEqual([
      [1, 1, 0],
      [0, 1, 1],
    ]);
    expect(
      parseMasks(
        {
          ffn_mask: [
            [1, 1, 0],
            [0, 1, 1],
          ],
        },
        'm.json',
        shape,
      ).head,
    ).toBeNull();
  });

  it('rejects bad files with the file and JSON path', () => {
    expect(() => parseMasks({ head_mask: [[1, 0, 1, 1]] }, 'm.json', shape)).toThrow(
      /m\.json: \/head_mask must be a list of 2 rows/,
    );
    expect(() =>
      parseMasks(
        {
          ffn_mask: [
            [1, 1],
            [0, 1, 1],
          ],
        },
        'm.json',
        shape,
      ),
    ).toThrow(/\/ffn_mask\/0 has 2 entries, the model's layer 0 has 3/);
    expect(() =>
      parseMasks(
        {
          ffn_mask: [
            [1, 2, 0],
            [0, 1, 1],
          ],
        },
        'm.json',
        shape,
      ),
    ).toThrow(/\/ffn_mask\/0 must be a list of 0 and 1/);
    expect(() =>
      parseMasks(
        {
          head_mask: [
            [1, 1, 1, 1],
            [1, 1, 0, 0],
          ],
        },
        'm.json',
        shape,
      ),
    ).toThrow(/keeps head 0, which is already pruned/);
    expect(() => parseMasks({ heads: [] }, 'm.json', shape)).toThrow(/unknown key 'heads'/);
  });
});
