// Which structures a prune config removes, in one place: the sweep's `structures` column
// (stages/prune-sweep.ts) and the editor's description of a config (extension presetInfo.ts) say
// it the same way. Pure: no file access, so the extension bundles it too.
import type { TransformerPruneConfig } from '../config/types';

export type Structure = 'heads' | 'FFN' | 'layers' | 'hidden' | 'vocabulary';

/** The parts of a prune config this reads (a resolved config, or a file's own keys). */
export interface StructuresConfig {
  transformer?: Partial<
    Pick<TransformerPruneConfig, 'prune_layers' | 'target_num_layers' | 'prune_hidden' | 'target_hidden_size'>
  >;
  vocabulary?: unknown;
}

/**
 * The structures a config prunes: heads and FFN always with a transformer section; layers with
 * prune_layers or target_num_layers; the hidden size with prune_hidden or target_hidden_size;
 * only the vocabulary when there is no transformer section (none when there is neither).
 */
export function prunedStructures(c: StructuresConfig): Structure[] {
  const t = c.transformer;
  if (!t) return c.vocabulary ? ['vocabulary'] : [];
  const out: Structure[] = ['heads', 'FFN'];
  if (t.prune_layers === true || t.target_num_layers !== undefined) out.push('layers');
  if (t.prune_hidden === true || t.target_hidden_size !== undefined) out.push('hidden');
  return out;
}

/** The sweep's label of what a config prunes, e.g. 'heads+FFN' or 'heads+FFN+layers+hidden'. */
export const structuresLabel = (c: StructuresConfig): string => prunedStructures(c).join('+') || 'none';

/** The structures label of the unpruned model's row in a sweep, and the label compared against. */
export const UNPRUNED_STRUCTURES = 'none';
export const BASELINE_STRUCTURES = 'heads+FFN';

/** A sweep row as far as the comparison with heads+FFN needs it. */
export interface ComparedRow {
  config: string;
  structures?: string;
  score: number;
  encoder_params: number;
  /** The whole model's parameters (embeddings, encoder, pooler, classifier): what is shipped. */
  params?: number;
}

/**
 * What a comparison counts: the encoder's parameters (what the budget and the sweep's shares are
 * in), or the whole model's (what is shipped; a smaller hidden size also shrinks the embeddings,
 * the pooler and the classifier, which the encoder count leaves out).
 */
export type ComparedSize = 'encoder_params' | 'params';

/**
 * For each row pruning other structures than heads+FFN: the heads+FFN row it is compared with,
 * the smallest one with at least as many parameters (`size`: the encoder's by default; of those,
 * the best score), the score difference (positive: this row is better with no more parameters)
 * and this row's size as a share of that row's. Undefined for the heads+FFN rows, the unpruned
 * one, and rows no heads+FFN row is as small as (heads+FFN alone did not get down to that size).
 */
export function compareWithBaseline(
  rows: readonly ComparedRow[],
  size: ComparedSize = 'encoder_params',
): ({ config: string; score_delta: number; ratio: number } | undefined)[] {
  const sizeOf = (r: ComparedRow) => r[size];
  const base = rows.filter((r) => r.structures === BASELINE_STRUCTURES && sizeOf(r) !== undefined);
  return rows.map((r) => {
    const n = sizeOf(r);
    if (!r.structures || r.structures === BASELINE_STRUCTURES || r.structures === UNPRUNED_STRUCTURES) return undefined;
    if (n === undefined) return undefined;
    let best: { row: ComparedRow; n: number } | undefined;
    for (const b of base) {
      const bn = sizeOf(b)!;
      if (bn < n) continue;
      if (!best || bn < best.n || (bn === best.n && b.score > best.row.score)) best = { row: b, n: bn };
    }
    if (!best) return undefined;
    return { config: best.row.config, score_delta: r.score - best.row.score, ratio: best.n > 0 ? n / best.n : 1 };
  });
}
