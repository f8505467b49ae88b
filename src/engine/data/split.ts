// Seeded train/test split: the same rows, fraction and seed always give the same split, and both
// halves keep the original row order (so files written from them diff cleanly).
import { UserError } from '../errors';
import { Rng } from './rng';

/** fraction is the share of rows that goes to `test` (rounded, at least 1 row on each side). */
export function splitRows<T>(rows: T[], fraction: number, seed: number): { train: T[]; test: T[] } {
  if (!(fraction > 0 && fraction < 1))
    throw new UserError(`split fraction must be between 0 and 1 (exclusive), got ${fraction}`);
  if (rows.length < 2) throw new UserError(`need at least 2 rows to split, got ${rows.length}`);
  const order = new Rng(seed).shuffle(rows.map((_, i) => i));
  const nTest = Math.min(rows.length - 1, Math.max(1, Math.round(rows.length * fraction)));
  const isTest = new Uint8Array(rows.length);
  for (let k = 0; k < nTest; k++) isTest[order[k]] = 1;
  return { train: rows.filter((_, i) => !isTest[i]), test: rows.filter((_, i) => isTest[i] === 1) };
}
