// BERT masked-language-model corruption (Devlin et al. 2018): pick ~15% of the real, non-special
// tokens; of those, 80% become [MASK], 10% a random token, 10% stay as they are. The model must
// predict the original id at every picked position, so it cannot learn "only [MASK] matters".
//
// N-gram masking (maxNgram > 1; as in MacBERT and ERNIE's whole-phrase masking): the picked
// positions come in runs of n consecutive tokens of one row, n drawn from 1..maxNgram with
// p(n) proportional to 1/n; a run starts at a token with probability prob / E[n], so about prob of
// the tokens are still picked. Each run is replaced as a whole (all [MASK], all random or all kept),
// so the model cannot read a masked token off its unmasked neighbour inside the n-gram.
import type { Batch } from './encode';
import type { Rng } from './rng';
import { DEFAULT_SPECIAL, specialIdList, type SpecialIds } from './vocab';

export interface MaskedBatch {
  /** B*T corrupted ids. */
  input: Int32Array;
  /** Flat indices b*T+t of the predicted positions, ascending. */
  positions: Int32Array;
  /** Original ids at those positions. */
  targets: Int32Array;
  /**
   * 1 per predicted position, 0 for the padding padMasked adds (the loss is weighted by it); absent:
   * every position counts.
   */
  weights?: Float32Array;
}

/**
 * n rounded up to a coarse bucket: a multiple of minStep (8), or of an eighth of the next power of
 * two where that is larger (eight buckets from one power of two to the next): less than
 * max(minStep, n / 4) more.
 */
export function coarseBucket(n: number, minStep = 8): number {
  const step = Math.max(minStep, 2 ** Math.max(0, Math.ceil(Math.log2(Math.max(1, n))) - 3));
  return Math.ceil(n / step) * step;
}

/**
 * The masked positions padded to coarseBucket(their count), so that their number takes few values
 * (a recorded step's shapes are its key): padding predicts position 0's token with weight 0.
 */
export function padMasked(m: MaskedBatch): MaskedBatch {
  const n = m.positions.length;
  const P = coarseBucket(n);
  const positions = new Int32Array(P);
  const targets = new Int32Array(P);
  const weights = new Float32Array(P);
  positions.set(m.positions);
  targets.set(m.targets);
  weights.fill(1, 0, n);
  return { input: m.input, positions, targets, weights };
}

/** p(n) proportional to 1/n for n = 1..maxNgram: its cumulative table and its mean. */
function ngramDistribution(maxNgram: number): { cdf: number[]; mean: number } {
  const w = Array.from({ length: maxNgram }, (_, i) => 1 / (i + 1));
  const total = w.reduce((a, b) => a + b, 0);
  let acc = 0;
  // E[n] = sum n * (1/n) / total = maxNgram / total.
  return { cdf: w.map((x) => (acc += x / total)), mean: maxNgram / total };
}

/**
 * `special`: the vocabulary's special ids (by name; bert-pruner's own are 0..4). They are never
 * picked nor drawn as the random replacement.
 */
export function maskBatch(
  b: Batch,
  vocabSize: number,
  rng: Rng,
  prob = 0.15,
  maxNgram = 1,
  special: SpecialIds = DEFAULT_SPECIAL,
): MaskedBatch {
  const specials = specialIdList(special);
  const isSpecial = new Set(specials);
  const regular = vocabSize - specials.length;
  if (regular <= 0) throw new Error(`vocabSize ${vocabSize} has no regular tokens`);
  // The k-th regular id (specials skipped), what a random replacement draws: with the specials at
  // 0..4 (our vocabularies) it is k + 5; a Hub vocabulary's specials elsewhere are skipped too.
  const regularId = (k: number) => {
    let id = k;
    for (const s of specials) if (s <= id) id++;
    return id;
  };
  if (!(prob > 0 && prob <= 1)) throw new Error(`mask probability must be in (0, 1], got ${prob}`);
  if (!(Number.isInteger(maxNgram) && maxNgram >= 1))
    throw new Error(`maxNgram must be an integer >= 1, got ${maxNgram}`);
  const input = b.ids.slice();
  const candidates: number[] = [];
  for (let i = 0; i < input.length; i++) if (b.mask[i] > 0 && !isSpecial.has(input[i])) candidates.push(i);

  // Runs of picked positions: [start index into candidates, length].
  const runs: [number, number][] = [];
  if (maxNgram === 1) {
    candidates.forEach((_, k) => rng.next() < prob && runs.push([k, 1]));
  } else {
    const { cdf, mean } = ngramDistribution(maxNgram);
    const start = Math.min(1, prob / mean);
    for (let k = 0; k < candidates.length;) {
      if (rng.next() >= start) {
        k++;
        continue;
      }
      const u = rng.next();
      const want = cdf.findIndex((c) => u <= c) + 1 || maxNgram;
      // Extend over consecutive candidates of the same row only.
      let n = 1;
      const row = Math.floor(candidates[k] / b.T);
      while (
        n < want &&
        k + n < candidates.length &&
        candidates[k + n] === candidates[k] + n &&
        Math.floor(candidates[k + n] / b.T) === row
      )
        n++;
      runs.push([k, n]);
      k += n;
    }
  }
  // A batch with nothing to predict would give a 0/0 loss; predict at least one token.
  if (runs.length === 0 && candidates.length > 0) runs.push([rng.int(candidates.length), 1]);

  const picked: number[] = [];
  for (const [k, n] of runs) {
    const r = rng.next();
    for (let j = 0; j < n; j++) {
      const pos = candidates[k + j];
      picked.push(pos);
      if (r < 0.8) input[pos] = special.mask;
      else if (r < 0.9) input[pos] = regularId(rng.int(regular));
      // else: keep the original token
    }
  }
  const targets = Int32Array.from(picked, (pos) => b.ids[pos]);
  return { input, positions: Int32Array.from(picked), targets };
}

/**
 * Token masking as augmentation (fine-tuning's mask_augment, augmented distillation): each real
 * (mask > 0), non-special token of a batch's flat ids is picked with probability `prob`, one draw
 * of `rng` per such token in order. Returns the picked flat indices, ascending.
 */
export function pickTokens(
  ids: Int32Array,
  mask: Float32Array,
  specials: ReadonlySet<number>,
  prob: number,
  rng: Rng,
): number[] {
  const picked: number[] = [];
  for (let i = 0; i < ids.length; i++) if (mask[i] > 0 && !specials.has(ids[i]) && rng.next() < prob) picked.push(i);
  return picked;
}

/** `ids` with the tokens pickTokens picks replaced by `maskId` (a new array). */
export function maskTokens(
  ids: Int32Array,
  mask: Float32Array,
  specials: ReadonlySet<number>,
  maskId: number,
  prob: number,
  rng: Rng,
): Int32Array {
  const out = ids.slice();
  for (const i of pickTokens(ids, mask, specials, prob, rng)) out[i] = maskId;
  return out;
}
