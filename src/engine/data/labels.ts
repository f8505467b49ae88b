// Labels of raw-text rows (.jsonl, header .csv): names or integer ids, read against a label set.
//
//   closed  the label set is known (a checkpoint's id2label, or the GAIIC default): a name is looked
//           up in it, an integer (a number or digits) is an id 0..n-1; anything else is an error
//           naming file:line.
//   open    no label set yet (training a fresh classifier, or a stage that only copies rows): every
//           label is accepted and the set is decided when the file has been read. Only integer ids
//           (or GAIIC's region_N): the ids are the labels (the GAIIC default set when all are
//           below 17, else HF's names LABEL_0 .. LABEL_max). Any other name: the names define the
//           set, sorted alphabetically (by code unit, so the same data in another order gives the
//           same set), and a digit label is one name among them.
import { clip } from './csv';

/** The GAIIC default label set: 17 labels region_0 .. region_16 (the GAIIC csv format always means these). */
export const GAIIC_NUM_LABELS = 17;
export const GAIIC_LABELS: readonly string[] = [...Array(GAIIC_NUM_LABELS).keys()].map((i) => `region_${i}`);

/**
 * The most labels a classifier may have, whatever says so (id2label, num_labels, the ids or names in
 * a data file, the classifier's shape). Sized to memory: each labelled row's multi-hot target holds
 * one float32 per label (10 000 labels: 40 KB a row); data/encode.ts also bounds rows x labels.
 */
export const MAX_LABELS = 10_000;

/** HF's names for labels it knows no names of: LABEL_0, LABEL_1, ... */
export const hfDefaultNames = (n: number) => [...Array(n).keys()].map((i) => `LABEL_${i}`);

/** What the labels of a file turned out to be (open reading). */
export interface FileLabels {
  /** Names when the file named its labels; null when it used integer ids only (or had no labels). */
  names: string[] | null;
  /** The largest id used (ids only), -1 without labels. */
  maxId: number;
}

const GAIIC_NAME = /^region_(\d{1,9})$/;

function asId(v: unknown): number | null {
  if (typeof v === 'number') return Number.isInteger(v) && v >= 0 ? v : null;
  if (typeof v !== 'string') return null;
  const s = v.trim();
  const m = GAIIC_NAME.exec(s);
  const digits = m ? m[1] : s;
  return /^\d{1,9}$/.test(digits) ? Number(digits) : null;
}

export class LabelReader {
  private readonly index: Map<string, number> | null;
  // open reading: provisional index per distinct label, with its text and id (null: a name)
  private readonly seen = new Map<string, number>();
  private readonly seenText: string[] = [];
  private readonly seenId: (number | null)[] = [];
  private readonly rows: number[][] = [];

  /** `names`: the label set (closed); undefined: open. */
  constructor(readonly names?: readonly string[]) {
    this.index = names ? new Map(names.map((n, i) => [n, i])) : null;
  }

  /** One label as an index, or an error message. */
  parse(v: unknown): number | string {
    if (typeof v !== 'number' && typeof v !== 'string')
      return `label ${clip(JSON.stringify(v) ?? String(v))} is not a number or a name`;
    if (typeof v === 'number' && !(Number.isInteger(v) && v >= 0)) return `label ${clip(String(v))} is not an id >= 0`;
    const text = typeof v === 'string' ? v.trim() : String(v);
    if (this.index) {
      const byName = this.index.get(text);
      if (byName !== undefined) return byName;
      const n = this.names!.length;
      const id = asId(v);
      const gaiicName = GAIIC_NAME.test(text) && this.index.has(GAIIC_LABELS[0]);
      if (id !== null && (typeof v === 'number' || /^\d+$/.test(text) || gaiicName)) {
        return id < n ? id : `label ${clip(text)} is outside 0..${n - 1}`;
      }
      const shown = n <= 20 ? this.names!.join(', ') : `${this.names!.slice(0, 20).join(', ')}, ...`;
      return `unknown label '${clip(text)}' (the model's ${n} labels: ${shown}; or an id 0..${n - 1})`;
    }
    if (text === '') return 'an empty label';
    let k = this.seen.get(text);
    if (k === undefined) {
      // Capped before anything is sized by them (label names, the multi-hot targets, the classifier).
      const id = asId(v);
      if (id !== null && id >= MAX_LABELS)
        return `label id ${id} is above the largest allowed, ${MAX_LABELS - 1} (at most ${MAX_LABELS} labels)`;
      if (this.seenText.length >= MAX_LABELS) return `more than ${MAX_LABELS} distinct labels (the limit)`;
      k = this.seenText.length;
      this.seen.set(text, k);
      this.seenText.push(text);
      this.seenId.push(id);
    }
    return k;
  }

  /** The labels of a row, without duplicates, or an error message. */
  parseAll(vals: unknown[]): number[] | string {
    const out: number[] = [];
    const seen = new Set<number>(); // linear in the row's labels, however many
    for (const v of vals) {
      const l = this.parse(v);
      if (typeof l === 'string') return l;
      if (!seen.has(l)) {
        seen.add(l);
        out.push(l);
      }
    }
    if (!this.index) this.rows.push(out); // remapped in place by finish()
    return out;
  }

  /** Open reading: settle the label set and renumber the rows' labels into it. */
  finish(): FileLabels {
    if (this.index) return { names: [...this.names!], maxId: this.names!.length - 1 };
    let map: number[];
    let result: FileLabels;
    if (this.seenId.every((id) => id !== null)) {
      map = this.seenId as number[];
      result = { names: null, maxId: map.reduce((a, b) => Math.max(a, b), -1) };
    } else {
      const sorted = [...this.seenText].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
      const pos = new Map(sorted.map((n, i) => [n, i]));
      map = this.seenText.map((t) => pos.get(t)!);
      result = { names: sorted, maxId: -1 };
    }
    for (const r of this.rows) {
      const re = [...new Set(r.map((k) => map[k]))];
      r.length = 0;
      r.push(...re);
    }
    return result;
  }
}

/** The label names of a file read openly: its names, or by ids the GAIIC default (ids < 17) or LABEL_i. */
export function namesOfFile(f: FileLabels): string[] {
  if (f.names) return f.names;
  return f.maxId < GAIIC_NUM_LABELS ? [...GAIIC_LABELS] : hfDefaultNames(f.maxId + 1);
}
