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
import { MASK_ID, SPECIAL_TOKENS } from './vocab';

export interface MaskedBatch {
  /** B*T corrupted ids. */
  input: Int32Array;
  /** Flat indices b*T+t of the predicted positions, ascending. */
  positions: Int32Array;
  /** Original ids at those positions. */
  targets: Int32Array;
}

const FIRST_REGULAR_ID = SPECIAL_TOKENS.length; // ids 0..4 are [PAD] [UNK] [CLS] [SEP] [MASK]

/** p(n) proportional to 1/n for n = 1..maxNgram: its cumulative table and its mean. */
function ngramDistribution(maxNgram: number): { cdf: number[]; mean: number } {
  const w = Array.from({ length: maxNgram }, (_, i) => 1 / (i + 1));
  const total = w.reduce((a, b) => a + b, 0);
  let acc = 0;
  // E[n] = sum n * (1/n) / total = maxNgram / total.
  return { cdf: w.map((x) => (acc += x / total)), mean: maxNgram / total };
}

export function maskBatch(b: Batch, vocabSize: number, rng: Rng, prob = 0.15, maxNgram = 1): MaskedBatch {
  if (vocabSize <= FIRST_REGULAR_ID) throw new Error(`vocabSize ${vocabSize} has no regular tokens`);
  if (!(prob > 0 && prob <= 1)) throw new Error(`mask probability must be in (0, 1], got ${prob}`);
  if (!(Number.isInteger(maxNgram) && maxNgram >= 1))
    throw new Error(`maxNgram must be an integer >= 1, got ${maxNgram}`);
  const input = b.ids.slice();
  const candidates: number[] = [];
  for (let i = 0; i < input.length; i++) if (b.mask[i] > 0 && input[i] >= FIRST_REGULAR_ID) candidates.push(i);

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
      if (r < 0.8) input[pos] = MASK_ID;
      else if (r < 0.9) input[pos] = FIRST_REGULAR_ID + rng.int(vocabSize - FIRST_REGULAR_ID);
      // else: keep the original token
    }
  }
  const targets = Int32Array.from(picked, (pos) => b.ids[pos]);
  return { input, positions: Int32Array.from(picked), targets };
}
