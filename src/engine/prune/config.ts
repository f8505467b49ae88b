// A prune config file completed from the run's settings and TextPruner's defaults.
import { budgetKeysIn, budgetProblems, dropReplacedBudget } from '../config/budgets';
import type { PruneConfig, TransformerPruneConfig } from '../config/settings';
import { deepMerge } from '../config/settings';
import { TEXTPRUNER_DEFAULTS } from '../config/presets';
import { UserError } from '../errors';

/**
 * A standalone prune config file (validated against prune.schema.json) completed from `defaults`
 * (the run's settings.prune): only the sections the file has are pruned; keys it leaves out come
 * from defaults, then from TextPruner's defaults. The targets have no TextPruner default.
 */
export function resolvePruneConfig(value: unknown, defaults: PruneConfig, source: string): PruneConfig {
  const v = value as { transformer?: Partial<TransformerPruneConfig>; vocabulary?: Partial<PruneConfig['vocabulary']> };
  const out: PruneConfig = {};
  if (v.transformer) {
    const t = deepMerge(
      { ...TEXTPRUNER_DEFAULTS, ...(defaults.transformer ?? {}) },
      v.transformer,
    ) as Partial<TransformerPruneConfig>;
    if (budgetKeysIn(v.transformer).length) {
      // A budget in the file replaces the per-layer targets and the other budget the run's settings may carry.
      if (v.transformer.target_num_of_heads === undefined) delete t.target_num_of_heads;
      if (v.transformer.target_ffn_size === undefined) delete t.target_ffn_size;
      dropReplacedBudget(t, v.transformer);
    }
    out.transformer = checkTransformerTargets(t, source);
  }
  if (v.vocabulary)
    out.vocabulary = { min_count: 1, prune_lm_head: 'auto', ...(defaults.vocabulary ?? {}), ...v.vocabulary };
  return out;
}

/**
 * What a transformer section must say to be pruned iteratively: one budget (target_encoder_params
 * or target_model_params), or both per-layer targets. A count budget must be a whole number; a
 * layer or hidden target implies that structure. `source` names the file (or the run's settings)
 * in the message.
 */
export function checkTransformerTargets(t: Partial<TransformerPruneConfig>, source: string): TransformerPruneConfig {
  const [problem] = budgetProblems(t);
  if (problem) throw new UserError(`${source}: /transformer/${problem.key}: ${problem.message}`);
  if (budgetKeysIn(t).length === 0 && t.pruning_method !== 'masks') {
    for (const k of ['target_ffn_size', 'target_num_of_heads'] as const) {
      if (t[k] === undefined)
        throw new UserError(
          `${source}: /transformer: missing '${k}' ` +
            '(give target_num_of_heads and target_ffn_size, ' +
            'or one budget: target_encoder_params or target_model_params)',
        );
    }
  }
  const out = { ...t } as TransformerPruneConfig;
  if (out.target_num_layers !== undefined) out.prune_layers = true;
  if (out.target_hidden_size !== undefined) out.prune_hidden = true;
  return out;
}
