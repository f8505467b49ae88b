// The preset picker's text comes from the presets' own settings.
import { describe, expect, it } from 'vitest';
import { PRESETS } from '../src/engine/config/presets';
import { presetItems, presetSummary } from '../src/extension/presetInfo';

describe('preset picker text', () => {
  it('describes each preset from its settings', () => {
    expect(presetSummary(PRESETS.gaiic)).toBe(
      'L2 H128 FFN1024, 15 MLM + 12 fine-tuning epochs, pruned gradually to 2 heads / 240 FFN, ' +
        '16 re-fine-tuning epochs',
    );
    expect(presetSummary(PRESETS.quick)).toMatch(/^L2 H64 FFN256, 8 MLM \+ 6 fine-tuning epochs, pruned to 2 heads/);
    // A budget preset says what it prunes to, and over which structures.
    expect(presetSummary(PRESETS['gaiic-deep'])).toMatch(
      /^L4 H128 FFN512, .*, pruned gradually to 99,000 encoder parameters \(heads, FFN, layers, hidden\), /,
    );
  });
  it('lists every preset once, the default first', () => {
    for (const first of Object.keys(PRESETS)) {
      const items = presetItems(first);
      expect(items[0]!.label).toBe(first);
      expect(items.map((i) => i.label).sort()).toEqual(Object.keys(PRESETS).sort());
      expect(items.every((i) => i.description && !/GPU|BERT-base/.test(i.description))).toBe(true);
    }
  });
});
