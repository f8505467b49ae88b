// The two budgets a transformer prune section may give (config/fields.ts), one at most:
// target_encoder_params counts the encoder (bert.encoder), target_model_params the whole
// classification model (embeddings, encoder, pooler and classifier: what is shipped). Pure, so
// the extension bundles it too.

export const BUDGET_KEYS = ['target_encoder_params', 'target_model_params'] as const;
export type BudgetKey = (typeof BUDGET_KEYS)[number];

/** What each budget counts, as messages and reports name it ("encoder parameters"). */
export const BUDGET_COUNTS: Record<BudgetKey, 'encoder' | 'model'> = {
  target_encoder_params: 'encoder',
  target_model_params: 'model',
};

export interface Budget {
  key: BudgetKey;
  /** A fraction (< 1) of the unpruned count, or a count (>= 1). */
  target: number;
}

const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null;

/** The budget a transformer section gives (the first numeric budget key), if any. */
export function budgetOf(t: unknown): Budget | undefined {
  if (!isObject(t)) return undefined;
  for (const key of BUDGET_KEYS) {
    const v = t[key];
    if (typeof v === 'number') return { key, target: v };
  }
  return undefined;
}

/** The budget keys a transformer section gives (more than one is a mistake the checks name). */
export const budgetKeysIn = (t: unknown): BudgetKey[] =>
  isObject(t) ? BUDGET_KEYS.filter((k) => t[k] !== undefined) : [];

/** A mistake in the budgets of a transformer section, at the key it names. */
export interface BudgetProblem {
  key: BudgetKey;
  kind: 'both' | 'not-whole';
  message: string;
}

/**
 * The mistakes a schema cannot express: two budgets, and a count (>= 1) that is not a whole
 * number. The engine refuses the first (prune/config.ts), the editor marks each (configFiles.ts).
 */
export function budgetProblems(t: unknown): BudgetProblem[] {
  const keys = budgetKeysIn(t);
  const out: BudgetProblem[] = [];
  if (keys.length > 1)
    out.push({
      key: keys[1],
      kind: 'both',
      message:
        `give one budget, ${keys.join(' or ')}, not both ` +
        `(they count ${keys.map((k) => `the ${BUDGET_COUNTS[k]}`).join(' and ')})`,
    });
  for (const key of keys) {
    const v = (t as Record<string, unknown>)[key];
    if (typeof v === 'number' && v >= 1 && !Number.isInteger(v))
      out.push({ key, kind: 'not-whole', message: `${v} is neither a fraction below 1 nor a whole parameter count` });
  }
  return out;
}

/**
 * After `given` (a file's transformer section) was merged over a base (a preset, the run's
 * settings): a budget the file gives replaces the base's other budget, so that a model budget in a
 * file is not refused as a second budget next to the preset's encoder budget.
 */
export function dropReplacedBudget(merged: Record<string, unknown>, given: unknown): void {
  const mine = budgetKeysIn(given);
  if (mine.length === 0) return;
  for (const k of BUDGET_KEYS) if (!mine.includes(k)) delete merged[k];
}
