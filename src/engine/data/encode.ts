// From parsed rows to model inputs: [CLS] tokens [SEP] id sequences, multi-hot label vectors, and
// padded batches. Each batch is padded only to its own longest row: with length bucketing this
// removes most padding, which is most of the cost of attention on short GAIIC texts.
import { UserError } from '../errors';
import type { Row } from './csv';
import type { Rng } from './rng';
import { assemble } from './tokenizer';
import { idsOf, type Vocab } from './vocab';

export interface Example {
  /** [CLS] ... [SEP], already truncated to maxLen. */
  ids: Int32Array;
  /** Multi-hot over numLabels, or null for unlabeled rows. */
  labels: Float32Array | null;
  /** Index into the source rows (to map predictions back to row ids). */
  row: number;
  /** Token types (0 through the first [SEP], 1 after), only for pairs. */
  types?: Int32Array;
  /** Tokens were cut to fit maxLen. */
  truncated?: boolean;
}

/** How many examples lost tokens to maxLen. */
export function truncatedCount(ex: Example[]): number {
  return ex.reduce((n, e) => n + (e.truncated ? 1 : 0), 0);
}

/** The most bytes the multi-hot targets of a data set may take (rows x labels x 4). */
export const MAX_LABEL_MATRIX_BYTES = 2 ** 31;

export function encodeRows(rows: Row[], vocab: Vocab, maxLen: number, numLabels = 17): Example[] {
  const labelled = rows.reduce((a, r) => a + (r.labels !== null ? 1 : 0), 0);
  if (labelled * numLabels * 4 > MAX_LABEL_MATRIX_BYTES)
    throw new UserError(
      `${labelled} labelled rows x ${numLabels} labels need ${((labelled * numLabels * 4) / 2 ** 30).toFixed(1)} GiB ` +
        `of targets (the limit is ${MAX_LABEL_MATRIX_BYTES / 2 ** 30} GiB); use fewer labels or fewer rows`,
    );
  if (!Number.isInteger(maxLen) || maxLen < 3) throw new UserError(`maxLen must be an integer >= 3, got ${maxLen}`);
  return rows.map((r, i) => {
    let ids: Int32Array;
    let types: Int32Array | undefined;
    let truncated: boolean;
    if (r.encoded) {
      // raw text, tokenized already: [CLS] a [SEP] (b [SEP]), truncated 'longest_first' as HF does
      // ids in this vocabulary (the tokenizer's, unless pruned since or a teacher's)
      const map = (pieces: string[] | undefined, ids: number[] | undefined) =>
        pieces ? pieces.map((t) => vocab.index.get(t) ?? vocab.special.unk) : ids;
      const enc = assemble(map(r.pieces, r.tokens)!, map(r.pairPieces, r.pair), vocab.special.cls, vocab.special.sep, {
        maxLength: maxLen,
      });
      ids = Int32Array.from(enc.ids);
      if (r.pair) types = Int32Array.from(enc.typeIds);
      truncated = enc.truncated;
    } else {
      const all = idsOf(r.tokens, vocab);
      const body = all.slice(0, maxLen - 2); // truncate the text, never the specials
      truncated = body.length < all.length;
      ids = new Int32Array(body.length + 2);
      ids[0] = vocab.special.cls;
      ids.set(body, 1);
      ids[ids.length - 1] = vocab.special.sep;
    }
    let labels: Float32Array | null = null;
    if (r.labels !== null) {
      labels = new Float32Array(numLabels);
      for (const l of r.labels) {
        if (!(l >= 0 && l < numLabels))
          throw new UserError(`row '${r.id}' (line ${r.line}): label ${l} is outside 0..${numLabels - 1}`);
        labels[l] = 1;
      }
    }
    return { ids, labels, row: i, ...(types ? { types } : {}), ...(truncated ? { truncated } : {}) };
  });
}

export interface Batch {
  /** B*T row-major, padded with padId (default 0; padding is masked, so any valid id gives the same outputs). */
  ids: Int32Array;
  /** B*T, 1 for real tokens (including [CLS]/[SEP]), 0 for padding. */
  mask: Float32Array;
  /** B*numLabels, or null if any example in the batch has no labels. */
  labels: Float32Array | null;
  B: number;
  T: number;
  /** Example.row of each batch row, in batch order. */
  rows: number[];
  /** Number of real (non-pad) tokens in the batch, i.e. the sum of mask. */
  tokens: number;
  /** B*T token types, when an example of the batch is a pair (padding and single texts: 0). */
  types?: Int32Array | null;
}

/** Batches hold this many batches' worth of examples when bucketing by length. */
const BUCKET_CHUNK_BATCHES = 50;

/** Padding a batch's length up to a multiple of `multiple` tokens, but never past `max`. */
export interface LengthPadding {
  multiple: number;
  max: number;
}

function collate(ex: Example[], order: number[], numLabels: number, padId: number, padTo?: LengthPadding): Batch {
  const B = order.length;
  let T = 0;
  for (const i of order) T = Math.max(T, ex[i].ids.length);
  if (padTo && padTo.multiple > 1) T = Math.max(T, Math.min(Math.ceil(T / padTo.multiple) * padTo.multiple, padTo.max));
  const ids = new Int32Array(B * T).fill(padId);
  const mask = new Float32Array(B * T);
  const hasLabels = order.every((i) => ex[i].labels !== null);
  const labels = hasLabels ? new Float32Array(B * numLabels) : null;
  const types = order.some((i) => ex[i].types) ? new Int32Array(B * T) : null;
  let tokens = 0;
  order.forEach((i, b) => {
    const e = ex[i];
    ids.set(e.ids, b * T);
    mask.fill(1, b * T, b * T + e.ids.length);
    if (types && e.types) types.set(e.types, b * T);
    tokens += e.ids.length;
    if (labels) {
      if (e.labels!.length !== numLabels)
        throw new Error(`example ${e.row} has ${e.labels!.length} labels, expected ${numLabels}`);
      labels.set(e.labels!, b * numLabels);
    }
  });
  return { ids, mask, labels, B, T, rows: order.map((i) => ex[i].row), tokens, ...(types ? { types } : {}) };
}

/**
 * Cut examples into batches. Without rng the order is kept (evaluation, prediction). With rng the
 * order is shuffled; with bucket as well, examples are grouped by similar length: shuffle, sort by
 * length within chunks of ~50 batches, cut into batches, then shuffle the batch order. Padding stays
 * small while each epoch still sees a different random order. bucket is ignored without rng.
 * padTo: each batch's length rounded up (recorded steps on webgpu meet fewer shapes; the padding
 * is masked, so the outputs are the same).
 */
export function makeBatches(
  ex: Example[],
  opts: { batchSize: number; rng?: Rng; bucket?: boolean; numLabels?: number; padId?: number; padTo?: LengthPadding },
): Batch[] {
  const { batchSize, rng } = opts;
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new UserError(`batchSize must be a positive integer, got ${batchSize}`);
  const numLabels = opts.numLabels ?? ex.find((e) => e.labels)?.labels?.length ?? 17;
  const order = ex.map((_, i) => i);
  const groups: number[][] = [];
  if (rng) rng.shuffle(order);
  if (rng && opts.bucket) {
    const chunk = batchSize * BUCKET_CHUNK_BATCHES;
    for (let s = 0; s < order.length; s += chunk) {
      const part = order.slice(s, s + chunk).sort((x, y) => ex[x].ids.length - ex[y].ids.length);
      for (let b = 0; b < part.length; b += batchSize) groups.push(part.slice(b, b + batchSize));
    }
    rng.shuffle(groups);
  } else {
    for (let b = 0; b < order.length; b += batchSize) groups.push(order.slice(b, b + batchSize));
  }
  return groups.map((g) => collate(ex, g, numLabels, opts.padId ?? 0, opts.padTo));
}
