// scripts/prune-sweep-gaiic.sh's configs, resolved as `prune` resolves them under the preset the
// script passes (gaiic-deep, whose own prune settings turn layers and hidden size on): the
// heads+FFN series must prune heads and FFN only, the all-four series all four structures.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { getPreset } from '../src/engine/config/presets';
import { resolvePruneConfig } from '../src/engine/prune/config';

describe('prune-sweep-gaiic.sh', () => {
  it('heads+FFN configs turn layers and hidden size off under gaiic-deep, all-four ones turn them on', () => {
    const run = fs.mkdtempSync(path.join(os.tmpdir(), 'bp-sweep-'));
    fs.mkdirSync(path.join(run, 'finetune'));
    fs.writeFileSync(path.join(run, 'finetune', 'config.json'), '{}');
    const r = spawnSync('bash', ['scripts/prune-sweep-gaiic.sh', run, 'gaiic-deep', '--configs-only'], {
      encoding: 'utf8',
    });
    expect(r.status, r.stderr).toBe(0);
    const files = r.stdout.trim().split('\n');
    expect(files).toHaveLength(10);
    const preset = getPreset('gaiic-deep');
    for (const f of files) {
      const t = resolvePruneConfig(JSON.parse(fs.readFileSync(f, 'utf8')), preset.prune, f).transformer!;
      const allFour = path.basename(f).startsWith('all-four');
      expect(t.prune_layers, f).toBe(allFour);
      expect(t.prune_hidden, f).toBe(allFour);
      expect(t.target_encoder_params).toBeGreaterThan(0);
      expect(t.target_encoder_params).toBeLessThan(1);
    }
    fs.rmSync(run, { recursive: true, force: true });
  });

  it('sweep-chart.mjs charts the parts of a sweep as one, one series per set of structures', () => {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), 'bp-chart-'));
    const row = (config: string, structures: string, score: number, encoder_params: number) => ({
      config,
      structures,
      score,
      encoder_params,
      encoder_kept: encoder_params / 800,
    });
    const unpruned = row('(unpruned)', 'none', 0.965, 800);
    const a = path.join(d, 'a.json');
    const b = path.join(d, 'b.json');
    fs.writeFileSync(
      a,
      JSON.stringify({ rows: [unpruned, row('hf-5', 'heads+FFN', 0.96, 70), row('hf-50', 'heads+FFN', 0.964, 400)] }),
    );
    fs.writeFileSync(b, JSON.stringify({ rows: [unpruned, row('all-5', 'heads+FFN+layers+hidden', 0.952, 40)] }));
    const svg = path.join(d, 'chart.svg');
    const r = spawnSync('node', ['scripts/sweep-chart.mjs', a, b, '--out', svg], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('4 points in 3 series'); // the unpruned row once
    const text = fs.readFileSync(svg, 'utf8');
    expect(text.match(/<circle [^>]*r="4" fill="[^"]+"><title>/g)).toHaveLength(4);
    expect(text).toContain('all-5: 0.9520 at 40 encoder parameters 5.0%');
    for (const label of ['unpruned', 'heads + FFN', 'all four (heads, FFN, layers, hidden)'])
      expect(text).toContain(label);
    expect(text.match(/<polyline /g)).toHaveLength(1); // heads+FFN has two points

    fs.writeFileSync(b, '{"rows": [{"config": "x"}]}');
    const bad = spawnSync('node', ['scripts/sweep-chart.mjs', a, b, '--out', svg], { encoding: 'utf8' });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain(`${b}: rows[0]: needs a numeric score`);
  });
});
