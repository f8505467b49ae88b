// BERT masked-language-model corruption (Devlin et al. 2018): pick ~15% of the real, non-special
// tokens; of those, 80% become [MASK], 10% a random token, 10% stay as they are. The model must
// predict the original id at every picked position, so it cannot learn "only [MASK] matters".
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

export function maskBatch(b: Batch, vocabSize: number, rng: Rng, prob = 0.15): MaskedBatch {
  if (vocabSize <= FIRST_REGULAR_ID) throw new Error(`vocabSize ${vocabSize} has no regular tokens`);
  if (!(prob > 0 && prob <= 1)) throw new Error(`mask probability must be in (0, 1], got ${prob}`);
  const input = b.ids.slice();
  const candidates: number[] = [];
  for (let i = 0; i < input.length; i++) if (b.mask[i] > 0 && input[i] >= FIRST_REGULAR_ID) candidates.push(i);

  let picked = candidates.filter(() => rng.next() < prob);
  // A batch with nothing to predict would give a 0/0 loss; predict at least one token.
  if (picked.length === 0 && candidates.length > 0) picked = [candidates[rng.int(candidates.length)]];

  const targets = new Int32Array(picked.length);
  picked.forEach((pos, k) => {
    targets[k] = input[pos];
    const r = rng.next();
    if (r < 0.8) input[pos] = MASK_ID;
    else if (r < 0.9) input[pos] = FIRST_REGULAR_ID + rng.int(vocabSize - FIRST_REGULAR_ID);
    // else: keep the original token
  });
  return { input, positions: Int32Array.from(picked), targets };
}
