// A prune config file completed from the run's settings and TextPruner's defaults.
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
    for (const k of ['target_ffn_size', 'target_num_of_heads'] as const) {
      if (t[k] === undefined)
        throw new UserError(`${source}: /transformer: missing '${k}' (the run's settings have no default for it)`);
    }
    out.transformer = t as TransformerPruneConfig;
  }
  if (v.vocabulary)
    out.vocabulary = { min_count: 1, prune_lm_head: 'auto', ...(defaults.vocabulary ?? {}), ...v.vocabulary };
  return out;
}
