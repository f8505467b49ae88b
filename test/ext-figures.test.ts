// One size formatter and one definition per metric for every panel (figures.ts).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { defineMetric, definitionsOf, formatBytes, formatMB } from '../src/extension/figures';
import { reportMessage } from '../src/extension/panelData/report';

describe('figures', () => {
  it('writes a size the same way from MB (the report) and from bytes (the Parameters panel, the tree)', () => {
    expect(formatMB(0.1816)).toBe('0.182 MB'); // the report's mb of a tiny model
    expect(formatBytes(181_600)).toBe('0.182 MB'); // its model.safetensors in bytes
    expect(formatMB(1.354)).toBe('1.35 MB');
    expect(formatMB(41.82)).toBe('41.8 MB');
    expect(formatMB(418.2)).toBe('418 MB');
  });

  it('no panel formats a size by hand', () => {
    const dir = path.join(__dirname, '..', 'src', 'extension');
    const files = [...fs.readdirSync(path.join(dir, 'webview')).map((f) => path.join('webview', f)), 'runsTree.ts'];
    for (const f of files) expect(fs.readFileSync(path.join(dir, f), 'utf8'), f).not.toMatch(/1024 \/ 1024/);
  });

  it('defines every metric the panels show, score included', () => {
    for (const k of ['score', 'val_score', 'after_refinetune', 'mlogloss', 'micro_f1', 'macro_auc', 'loss', 'lr', 'mb'])
      expect(defineMetric(k), k).toBeDefined();
    expect(defineMetric('score')).toContain('1 − mlogloss');
    expect(definitionsOf(['score', 'val_score', 'loss'])).toHaveLength(2);
  });

  it("the report panel gets the engine's reasons for a missed target", () => {
    const m = reportMessage(
      'r',
      {
        why: [{ unit: 'heads', target: 2, kept: 3, reasons: ['minimum per layer: ...'] }, { bad: 1 }],
      },
      undefined,
    );
    expect(m.why).toEqual([{ unit: 'heads', target: 2, kept: 3, reasons: ['minimum per layer: ...'] }]);
  });
});
