// What the preset picker says about each preset. The sizes and epochs are read from the preset's
// own settings (src/engine/config/presets.ts), so the text cannot drift from what a run gets; only
// what each preset is for, and the measured times, are written here.
import { parse } from 'jsonc-parser';
import { BUDGET_COUNTS, budgetOf } from '../engine/config/budgets';
import { PRESETS, type PresetName } from '../engine/config/presets';
import type { Settings, TransformerPruneConfig } from '../engine/config/settings';
import { jsonDepthExceeded } from '../engine/io/read';
import { prunedStructures } from '../engine/prune/structures';

const PURPOSE: Record<PresetName, string> = {
  tiny: 'the smallest model, a smoke test (seconds)',
  quick: 'a small model: the demo data in a few minutes on a CPU',
  gaiic: 'for GAIIC-2021-sized data (8000 rows): about 38 minutes on 2 CPU cores',
  'gaiic-deep': 'GAIIC-2021-sized data, 4 layers pruned to 15% of the encoder over all four structures',
};

/**
 * One line from a preset's settings, e.g. "L2 H128 FFN1024, 15 MLM + 12 fine-tuning epochs, pruned
 * gradually to 2 heads / 240 FFN, 16 re-fine-tuning epochs" (heads and FFN: per layer, on average).
 */
export function presetSummary(s: Settings): string {
  const m = s.model;
  const t = s.prune.transformer;
  const how = t && t.recovery_epochs > 0 ? ' gradually' : '';
  const parts = [
    `L${m.num_hidden_layers} H${m.hidden_size} FFN${m.intermediate_size}`,
    `${s.pretrain.epochs} MLM + ${s.finetune.epochs} fine-tuning epochs`,
    t ? `pruned${how} to ${pruneTarget(t)}` : 'no transformer pruning',
    `${s.refinetune.epochs} re-fine-tuning epochs`,
  ];
  return parts.join(', ');
}

/**
 * What a transformer section prunes to: "15% of the encoder (heads, FFN, layers, hidden)" or
 * "99,000 encoder parameters (heads, FFN)" with a budget (target_encoder_params; "model parameters"
 * and "of the model" with target_model_params), else the targets
 * per layer, "2 heads / 240 FFN", with "/ 3 layers" and "/ hidden 96" where it has those targets
 * (and "+ layers", "+ hidden" where the pruner chooses them).
 */
export function pruneTarget(t: Partial<TransformerPruneConfig>): string {
  const given = budgetOf(t);
  if (given && given.target > 0) {
    const [budget, what] = [given.target, BUDGET_COUNTS[given.key]];
    const amount =
      budget < 1
        ? `${+(100 * budget).toFixed(1)}% of the ${what}`
        : `${budget.toLocaleString('en-US')} ${what} parameters`;
    return `${amount} (${prunedStructures({ transformer: t }).join(', ')})`;
  }
  // A file may leave the targets to the run's settings.
  const parts: string[] = [];
  if (t.target_num_of_heads !== undefined) parts.push(plural(t.target_num_of_heads, 'head'));
  if (t.target_ffn_size !== undefined) parts.push(`${t.target_ffn_size} FFN`);
  if (t.target_num_layers !== undefined) parts.push(plural(t.target_num_layers, 'layer'));
  if (t.target_hidden_size !== undefined) parts.push(`hidden ${t.target_hidden_size}`);
  const chosen = [
    t.target_num_layers === undefined && t.prune_layers === true ? ' + layers' : '',
    t.target_hidden_size === undefined && t.prune_hidden === true ? ' + hidden' : '',
  ].join('');
  return (parts.length ? parts.join(' / ') : "the run's targets") + chosen;
}

const plural = (n: number, unit: string) => `${n} ${unit}${n === 1 ? '' : 's'}`;

/**
 * One line about a pruning config file's contents (its CodeLens), from its keys alone (the run's
 * settings fill in the rest): "Prunes gradually to 15% of the encoder (heads, FFN, layers, hidden)",
 * "Prunes the vocabulary"; undefined for a file that says neither.
 */
export function describePruneConfig(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const v = value as { transformer?: unknown; vocabulary?: unknown };
  const vocab = typeof v.vocabulary === 'object' && v.vocabulary !== null;
  if (typeof v.transformer !== 'object' || v.transformer === null) return vocab ? 'Prunes the vocabulary' : undefined;
  const t = v.transformer as Partial<TransformerPruneConfig>;
  if (t.pruning_method === 'masks')
    return `Prunes the heads and FFN neurons masks_file marks${vocab ? ', and the vocabulary' : ''}`;
  const how = typeof t.recovery_epochs === 'number' && t.recovery_epochs > 0 ? ' gradually' : '';
  return `Prunes${how} to ${pruneTarget(t)}${vocab ? ', and the vocabulary' : ''}`;
}

/** describePruneConfig of a file's text, tolerant of the mistakes a file has while it is edited. */
export function describePruneConfigText(text: string): string | undefined {
  if (text.length > 1_000_000 || jsonDepthExceeded(text) >= 0) return undefined;
  return describePruneConfig(parse(text));
}

/** The picker's items, the default preset first. */
export function presetItems(first: string): { label: string; description: string; detail: string }[] {
  return (Object.keys(PRESETS) as PresetName[])
    .map((name) => ({ label: name, description: PURPOSE[name], detail: presetSummary(PRESETS[name]) }))
    .sort((a, b) => Number(b.label === first) - Number(a.label === first));
}
