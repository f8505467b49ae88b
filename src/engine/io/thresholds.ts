// thresholds.json: the per-label decision thresholds stored with a classifier checkpoint.
//
//   { "labels": ["region_0", ...], "thresholds": [17 numbers], "f1": [17 numbers or null],
//     "source": "validation split of finetune", "val_rows": N }
//
// Fine-tuning (and re-fine-tuning) chooses each label's F1-best threshold on its seeded validation
// split, with the weights it keeps, and writes the file inside the same atomic checkpoint write
// (saveCheckpoint's extra files), so weights and thresholds never disagree. Never tuned on a test
// file. Without a validation split (val_fraction 0) no file is written and 0.5 is used. Pruning
// copies the unpruned model's file along and says so in `source`; re-fine-tuning recomputes it.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserError } from '../errors';
import { labelNamesOf, numLabels, type BertConfig } from '../model/config';
import { DEFAULT_THRESHOLD, tuneThresholds } from '../train/metrics';
import { readJson } from './atomic';
import type { ExtraFiles } from './checkpoint';

export const THRESHOLDS_FILE = 'thresholds.json';

export interface Thresholds {
  labels: string[];
  thresholds: number[];
  /** F1 of each label at its threshold on the validation rows (null: no positives there). */
  f1?: (number | null)[];
  source: string;
  val_rows: number;
}

/** The names of the labels: the config's id2label (without one: the GAIIC default), else the indices. */
export function labelNames(cfg: Pick<BertConfig, 'id2label'>, L = numLabels(cfg)): string[] {
  const names = labelNamesOf(cfg);
  return [...Array(L).keys()].map((i) => names[i] ?? String(i));
}

/** Thresholds tuned on validation probabilities and labels (flat [N * L]). */
export function thresholdsFromValidation(
  probs: ArrayLike<number>,
  labels: ArrayLike<number>,
  cfg: Pick<BertConfig, 'id2label'>,
  stage: string,
  L = numLabels(cfg),
): Thresholds {
  const t = tuneThresholds(probs, labels, L);
  const round = (x: number) => +x.toPrecision(7);
  return {
    labels: labelNames(cfg, L),
    thresholds: t.map((c) => c.threshold), // unrounded: decisions on the validation rows reproduce exactly
    f1: t.map((c) => (c.f1 === null ? null : round(c.f1))),
    source: `validation split of ${stage}`,
    val_rows: probs.length / L,
  };
}

/** saveCheckpoint's extra files for a checkpoint with these thresholds (none: no file). */
export function thresholdFiles(t: Thresholds | null): ExtraFiles {
  return t ? { json: { [THRESHOLDS_FILE]: t } } : {};
}

/**
 * A checkpoint's thresholds, or null when it has no thresholds.json. A file that is not a
 * well-formed thresholds file is a user error naming what is wrong.
 */
export function readThresholds(dir: string, labels?: number): Thresholds | null {
  const file = path.join(dir, THRESHOLDS_FILE);
  if (!fs.existsSync(file)) return null;
  const t = readJson<Record<string, unknown>>(file);
  const bad = (what: string) => new UserError(`${file}: ${what}`);
  if (typeof t !== 'object' || t === null || Array.isArray(t)) throw bad('not a JSON object');
  const th = t.thresholds;
  const L = labels ?? (Array.isArray(th) && th.length > 0 ? th.length : 17);
  if (!Array.isArray(th) || th.length !== L) throw bad(`'thresholds' must be a list of ${L} numbers (one per label)`);
  th.forEach((x, i) => {
    if (typeof x !== 'number' || !(x >= 0 && x <= 1)) throw bad(`thresholds[${i}] must be a number in [0, 1]`);
  });
  const named = Array.isArray(t.labels) && t.labels.length === L && t.labels.every((x) => typeof x === 'string');
  const names = named ? (t.labels as string[]) : [...Array(L).keys()].map(String);
  const f1 = Array.isArray(t.f1) && t.f1.length === L ? t.f1.map((x) => (typeof x === 'number' ? x : null)) : undefined;
  return {
    labels: names,
    thresholds: th as number[],
    f1,
    source: typeof t.source === 'string' ? t.source : 'unknown',
    val_rows: typeof t.val_rows === 'number' ? t.val_rows : 0,
  };
}

/** The thresholds to decide with: the checkpoint's, else DEFAULT_THRESHOLD for every label. */
export function decisionThresholds(t: Thresholds | null, L = 17): number[] {
  return t ? t.thresholds : new Array<number>(L).fill(DEFAULT_THRESHOLD);
}

/**
 * What pruning writes with a pruned checkpoint: the source model's thresholds, marked as copied
 * (they were chosen for the unpruned weights; re-fine-tuning the pruned model recomputes them).
 */
export function carriedThresholdFiles(fromDir: string, stage: string): ExtraFiles {
  const t = readThresholds(fromDir);
  if (!t) return {};
  const from = path.basename(path.resolve(fromDir));
  return thresholdFiles({ ...t, source: `${t.source} (of ${from}, copied by ${stage})` });
}
