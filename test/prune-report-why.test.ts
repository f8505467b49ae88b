// prune-report.json's `why`: a target the pruned model does not meet says which constraint decided
// (a layer never left empty, multiple_of groups, even masking's equal share); met targets say nothing.
import { describe, expect, it } from 'vitest';
import type { TransformerPruneConfig } from '../src/engine/config/settings';
import { transformerConfig } from './prune-helpers';
import { reportTables, targetNotes, type LayerReport, type PruneReport } from '../src/engine/prune/report';

const tc = (o: Partial<TransformerPruneConfig>): TransformerPruneConfig =>
  transformerConfig({ n_iters: 1, ffn_even_masking: false, ...o });

const layer = (l: number, before: number, kept: number, ffnTotal: number, ffnKept: number): LayerReport => ({
  layer: l,
  heads_total: 4,
  heads_before: [...Array(before).keys()],
  heads_kept: [...Array(kept).keys()],
  ffn_total: ffnTotal,
  ffn_kept: ffnKept,
  head_importance: [],
  ffn_importance: [],
});

describe('targetNotes: why a target was not met', () => {
  it('target_num_of_heads 1 on 2 layers cannot be met when the ranking empties a layer', () => {
    // The global ranking kept both heads of layer 1 and none of layer 0, which got its best head back.
    const notes = targetNotes(tc({}), [layer(0, 4, 1, 64, 32), layer(1, 4, 2, 64, 32)]);
    expect(notes).toHaveLength(1);
    expect(notes[0]).toMatchObject({ unit: 'heads', target: 2, kept: 3 });
    expect(notes[0].reasons.join(' ')).toMatch(/minimum per layer: a layer is never left without a head; layer 0/);
  });

  it('multiple_of: FFN neurons kept in whole groups', () => {
    const notes = targetNotes(tc({ target_ffn_size: 24, multiple_of: 16, target_num_of_heads: 4 }), [
      layer(0, 4, 4, 40, 32),
      layer(1, 4, 4, 40, 8),
    ]);
    expect(notes.map((n) => n.unit)).toEqual(['ffn']);
    expect(notes[0]).toMatchObject({ target: 48, kept: 40 });
    expect(notes[0].reasons[0]).toMatch(/^multiple_of 16: FFN neurons are kept in whole groups of 16/);
  });

  it('even masking: a layer that had fewer units than the share keeps all it had', () => {
    const notes = targetNotes(tc({ head_even_masking: true, target_num_of_heads: 2 }), [
      layer(0, 1, 1, 64, 32),
      layer(1, 4, 2, 64, 32),
    ]);
    expect(notes[0]).toMatchObject({ unit: 'heads', target: 4, kept: 3 });
    expect(notes[0].reasons.join(' ')).toContain('layer 0 had fewer than 2 heads before pruning');
  });

  it('met targets and masks files say nothing; the CLI prints the notes as a table', () => {
    expect(targetNotes(tc({}), [layer(0, 4, 1, 64, 32), layer(1, 4, 1, 64, 32)])).toEqual([]);
    expect(targetNotes(tc({ pruning_method: 'masks' }), [layer(0, 4, 3, 64, 32)])).toEqual([]);
    const why = targetNotes(tc({}), [layer(0, 4, 1, 64, 32), layer(1, 4, 2, 64, 32)]);
    const stats = { params: 1, encoder_params: 1, mb: 1, flops: 1, latency_ms: null };
    const r = { before: stats, after: stats, layers: [], iterations: [], metrics: {}, why } as unknown as PruneReport;
    const t = reportTables(r).find((x) => x.title === 'Pruning: targets not met')!;
    expect(t.rows[0].slice(0, 3)).toEqual(['heads', 2, 3]);
  });
});
