// Turning importance scores into keep/prune masks, as TextPruner's `generate_mask` does it:
//
//   even masking    every layer keeps its top-k units, k = floor(total target / layers)
//   uneven masking  all units of all layers are ranked together; the top `total target` stay
//   multiple_of m   (uneven only, as in TextPruner) each layer's units, sorted by importance, are cut
//                   into groups of m consecutive ones; groups are ranked globally by their summed
//                   importance and whole groups are kept, so every layer keeps a multiple of m
//   never empty     a layer left with no unit gets its most important unit back
//
// Generalised to layers of different sizes (an already pruned model): importance is ragged, one
// array per layer. Units an earlier iteration already masked rank below every live unit (their
// importance is 0 then, which a live unit can tie), so masks only ever shrink. TextPruner relies on
// the tie not happening; we make it impossible.

import { UserError } from '../errors';

export type Mask = number[][]; // per layer, 1 = keep, 0 = prune, in the layer's current unit order

/** Indices of xs sorted ascending by value; ties keep index order (a stable sort). */
function argsortAsc(xs: number[]): number[] {
  return xs.map((_, i) => i).sort((a, b) => xs[a] - xs[b] || a - b);
}

/** Importance with already-masked units pushed below every live one (importance is >= 0). */
function rankValues(importance: number[][], prev?: Mask): number[][] {
  return importance.map((row, l) => row.map((v, i) => (prev && prev[l][i] === 0 ? -1 : v)));
}

export interface MaskOptions {
  even: boolean;
  multipleOf?: number;
  /** The mask of the previous iteration: its zeros stay zeros. */
  prev?: Mask;
}

/** Keep `totalTarget` units over all layers (see the header for how they are chosen). */
export function generateMask(importance: number[][], totalTarget: number, o: MaskOptions): Mask {
  const rank = rankValues(importance, o.prev);
  const L = importance.length;
  const m = o.multipleOf ?? 1;
  const mask: Mask = importance.map((row) => row.map(() => 1));

  if (o.even) {
    const perLayer = Math.floor(totalTarget / L);
    rank.forEach((row, l) => {
      const order = argsortAsc(row);
      for (const i of order.slice(0, Math.max(0, row.length - perLayer))) mask[l][i] = 0;
    });
  } else if (m === 1) {
    const flat: { l: number; i: number; v: number }[] = [];
    rank.forEach((row, l) => row.forEach((v, i) => flat.push({ l, i, v })));
    const order = argsortAsc(flat.map((u) => u.v));
    for (const k of order.slice(0, Math.max(0, flat.length - totalTarget))) mask[flat[k].l][flat[k].i] = 0;
  } else {
    // Groups of m consecutive units of each layer's ascending order. TextPruner needs the layer
    // size to be a multiple of m; where it is not, the least important (size mod m) units form a
    // smaller first group.
    const groups: { l: number; units: number[]; v: number }[] = [];
    rank.forEach((row, l) => {
      const order = argsortAsc(row);
      const first = order.length % m;
      const cuts = first ? [order.slice(0, first)] : [];
      for (let s = first; s < order.length; s += m) cuts.push(order.slice(s, s + m));
      for (const units of cuts) groups.push({ l, units, v: units.reduce((a, i) => a + row[i], 0) });
    });
    const keepGroups = Math.floor(totalTarget / m);
    const order = argsortAsc(groups.map((g) => g.v));
    for (const k of order.slice(0, Math.max(0, groups.length - keepGroups))) {
      for (const i of groups[k].units) mask[groups[k].l][i] = 0;
    }
  }

  // Never disconnect the graph: an emptied layer keeps its most important unit.
  rank.forEach((row, l) => {
    if (row.length > 0 && mask[l].reduce((a, b) => a + b, 0) === 0) {
      let best = 0;
      for (let i = 1; i < row.length; i++) if (row[i] > row[best]) best = i;
      mask[l][best] = 1;
    }
  });
  return mask;
}

export const maskCounts = (mask: Mask): number[] => mask.map((row) => row.reduce((a, b) => a + b, 0));

/**
 * The per-iteration totals of TextPruner's iterative schedule: from `total` down to `target` in n
 * steps; the first (total - target) mod n steps remove one unit more than the others.
 */
export function schedule(total: number, target: number, n: number): number[] {
  const remove = Math.max(0, total - target);
  const per = Math.floor(remove / n);
  const res = remove % n;
  const out: number[] = [];
  let cur = total;
  for (let i = 0; i < n; i++) {
    cur -= per + (i < res ? 1 : 0);
    out.push(cur);
  }
  return out;
}

/**
 * A masks file: {"head_mask": [[1, 0, ...], ...], "ffn_mask": [[...], ...]}, one row per layer,
 * 1 = keep, 0 = prune; either key may be absent (nothing of that kind is pruned). A head row lists
 * the layer's present heads, or, for a layer with heads already pruned, may instead list all
 * `num_attention_heads` original heads (entries of removed heads must then be 0).
 */
export function parseMasks(
  value: unknown,
  file: string,
  shape: { heads: number[]; ffn: number[]; numHeads: number; presentHeads: number[][] },
): { head: Mask | null; ffn: Mask | null } {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new UserError(`${file}: expected an object {"head_mask": [[...]], "ffn_mask": [[...]]}`);
  const v = value as Record<string, unknown>;
  for (const k of Object.keys(v))
    if (k !== 'head_mask' && k !== 'ffn_mask')
      throw new UserError(`${file}: unknown key '${k}' (allowed: head_mask, ffn_mask)`);
  if (v.head_mask === undefined && v.ffn_mask === undefined)
    throw new UserError(`${file}: has neither 'head_mask' nor 'ffn_mask'`);
  const rows = (key: string, sizes: number[], alt?: (l: number, row: number[]) => number[] | null): Mask | null => {
    const m = v[key];
    if (m === undefined) return null;
    if (!Array.isArray(m) || m.length !== sizes.length)
      throw new UserError(`${file}: /${key} must be a list of ${sizes.length} rows (one per layer)`);
    return m.map((row, l) => {
      if (!Array.isArray(row) || !row.every((x) => x === 0 || x === 1))
        throw new UserError(`${file}: /${key}/${l} must be a list of 0 and 1`);
      if (row.length === sizes[l]) return row as number[];
      const mapped = alt?.(l, row as number[]);
      if (mapped) return mapped;
      throw new UserError(`${file}: /${key}/${l} has ${row.length} entries, the model's layer ${l} has ${sizes[l]}`);
    });
  };
  const head = rows('head_mask', shape.heads, (l, row) => {
    if (row.length !== shape.numHeads) return null;
    const present = new Set(shape.presentHeads[l]);
    row.forEach((x, h) => {
      if (x === 1 && !present.has(h))
        throw new UserError(`${file}: /head_mask/${l}/${h} keeps head ${h}, which is already pruned`);
    });
    return shape.presentHeads[l].map((h) => row[h]);
  });
  const ffn = rows('ffn_mask', shape.ffn);
  return { head, ffn };
}
