// Token types of pairs reach the embeddings: all-zero types give exactly the single-text output,
// type 1 changes it (token_type_embeddings row 1), and a batch of encoded pairs carries them.
import { beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_SPECIAL } from '../src/engine/data/vocab';
import { initBackend } from '../src/engine/backend';
import { encodeRows, makeBatches } from '../src/engine/data/encode';
import { classify, toInputs } from '../src/engine/model/bert';
import { tinyModel } from './helpers/tiny';

beforeAll(async () => {
  await initBackend('cpu');
});

describe('token types', () => {
  it('type 0 everywhere is the plain model; type 1 after the first [SEP] changes the output', () => {
    const { cfg, params } = tinyModel(3);
    const ids = Int32Array.from([2, 7, 8, 3, 9, 3]);
    const mask = new Float32Array(6).fill(1);
    const plain = classify(params, cfg, toInputs(ids, mask, 1, 6)).arraySync();
    const zeros = classify(params, cfg, toInputs(ids, mask, 1, 6, new Int32Array(6))).arraySync();
    for (let i = 0; i < plain[0].length; i++) expect(zeros[0][i]).toBeCloseTo(plain[0][i], 5);
    const types = Int32Array.from([0, 0, 0, 0, 1, 1]);
    const paired = classify(params, cfg, toInputs(ids, mask, 1, 6, types)).arraySync();
    expect(paired[0].some((x, i) => Math.abs(x - plain[0][i]) > 1e-6)).toBe(true);
  });

  it('batches of encoded pairs carry the types, padded with 0', () => {
    const V = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', 'a', 'b'];
    const vocab = {
      tokens: V,
      counts: V.map(() => 0),
      index: new Map(V.map((t, i) => [t, i])),
      special: DEFAULT_SPECIAL,
    };
    const rows = [
      { id: '1', tokens: [5], pieces: ['a'], pair: [6, 6], pairPieces: ['b', 'b'], encoded: true, labels: [], line: 1 },
      { id: '2', tokens: [5], pieces: ['a'], encoded: true, labels: [], line: 2 },
    ];
    const [b] = makeBatches(encodeRows(rows, vocab, 16), { batchSize: 2 });
    expect(Array.from(b.ids)).toEqual([2, 5, 3, 6, 6, 3, 2, 5, 3, 0, 0, 0]);
    expect(Array.from(b.types!)).toEqual([0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0]);
  });
});
