// Run settings: a preset (config/presets.ts) with the user's overrides merged in. Their types are
// config/types.ts.

import { UserError } from '../errors';
import { getPreset } from './presets';
import { dropReplacedBudget } from './budgets';
import { deepMerge } from './merge';
import { validateConfig } from './validate';

export type {
  ModelSettings,
  LrSchedule,
  OptimSettings,
  PretrainSettings,
  FinetuneSettings,
  ProblemTypeSetting,
  RefinetuneSettings,
  TransformerPruneConfig,
  VocabularyPruneConfig,
  PruneConfig,
  Settings,
  DeepPartial,
  SettingsOverride,
} from './types';
import type { Settings, SettingsOverride } from './types';

export { deepMerge } from './merge';

/**
 * The settings of `preset` with `override` (the parsed contents of a --config file) merged in. The
 * override is validated against settings.schema.json, then the constraints that span several keys
 * (which a JSON schema cannot express) are checked on the result.
 */
export function resolveSettings(preset: string, override?: unknown, source = '--config'): Settings {
  const base = getPreset(preset);
  if (override === undefined) return structuredClone(base);
  validateConfig('settings', override, source);
  const { $schema: _ignored, ...rest } = override as SettingsOverride;
  const s = deepMerge(base, rest);
  // A budget the override gives replaces the preset's other one (config/budgets.ts).
  if (s.prune?.transformer) dropReplacedBudget(s.prune.transformer as Record<string, unknown>, rest.prune?.transformer);
  checkSettings(s, `${source} (over preset '${preset}')`);
  return s;
}

/** Constraints between keys. Throws a UserError naming `source` and every violation. */
function checkSettings(s: Settings, source: string): void {
  const problems: string[] = [];
  const m = s.model;
  if (m.hidden_size % m.num_attention_heads !== 0) {
    problems.push(
      `model.hidden_size (${m.hidden_size}) must be a multiple of model.num_attention_heads (${m.num_attention_heads})`,
    );
  }
  if (m.max_len > m.max_position_embeddings) {
    problems.push(
      `model.max_len (${m.max_len}) must be <= model.max_position_embeddings (${m.max_position_embeddings})`,
    );
  }
  const r = s.refinetune;
  if ((r.mask_augment ?? 0) > 0 && (r.distill_augment ?? 0) > 0) {
    const both = `refinetune.mask_augment (${r.mask_augment}) and refinetune.distill_augment (${r.distill_augment})`;
    problems.push(`${both} both mask the tokens: set one of them to 0`);
  }
  // Prune targets are checked against the actual checkpoint by the prune stage: a run may prune a
  // model whose shape differs from these settings (e.g. a downloaded HF checkpoint).
  if (problems.length) throw new UserError(problems.map((p) => `${source}: ${p}`).join('\n'));
}
