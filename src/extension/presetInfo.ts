// What the preset picker says about each preset. The sizes and epochs are read from the preset's
// own settings (src/engine/config/presets.ts), so the text cannot drift from what a run gets; only
// what each preset is for, and the measured times, are written here.
import { PRESETS, type PresetName } from '../engine/config/presets';
import type { Settings } from '../engine/config/settings';

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
    t ? `pruned${how} to ${t.target_num_of_heads} heads / ${t.target_ffn_size} FFN` : 'no transformer pruning',
    `${s.refinetune.epochs} re-fine-tuning epochs`,
  ];
  return parts.join(', ');
}

/** The picker's items, the default preset first. */
export function presetItems(first: string): { label: string; description: string; detail: string }[] {
  return (Object.keys(PRESETS) as PresetName[])
    .map((name) => ({ label: name, description: PURPOSE[name], detail: presetSummary(PRESETS[name]) }))
    .sort((a, b) => Number(b.label === first) - Number(a.label === first));
}
