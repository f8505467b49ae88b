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
});
