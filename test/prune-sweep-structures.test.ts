// prune-sweep comparing heads+FFN with all four structures on a tiny checkpoint: each row says what
// its config prunes and the share of the encoder it kept, a deeper row is compared with the
// smallest heads+FFN row at least as large, sweep.json and the table carry it, and the report
// panel splits the rows into one series per set of structures.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/engine/backend';
import type { StageContext } from '../src/engine/context';
import { getPreset } from '../src/engine/config/presets';
import { saveCheckpoint } from '../src/engine/io/checkpoint';
import { disposeParams } from '../src/engine/model/params';
import type { EngineEvent } from '../src/engine/protocol';
import { pruneSweep } from '../src/engine/stages/prune-sweep';
import { readSafetensorsHeader } from '../src/engine/io/safetensors';
import { reportMessage, sweepSeries } from '../src/extension/panelData/report';
import { readCheckpoint } from '../src/extension/runModel';
import { corpusRows, tinyModel, tmpDir, writeCsv } from './prune-helpers';

let dir: string;
let model: string;
let dataFile: string;
const events: EngineEvent[] = [];
const ctx: StageContext = { emit: (e) => events.push(e), backend: 'wasm' };

beforeAll(async () => {
  await initBackend('wasm');
  dir = tmpDir('sweep-structures');
  const { rows, vocab } = corpusRows(40);
  const run = path.join(dir, 'run');
  fs.mkdirSync(path.join(run, 'data'), { recursive: true });
  dataFile = path.join(run, 'data', 'train.csv');
  writeCsv(dataFile, rows);
  writeCsv(path.join(run, 'data', 'test.csv'), rows.slice(0, 10));
  const { cfg, params } = tinyModel({ vocab: vocab.tokens.length, layers: 3, seed: 5 });
  cfg.max_len = 16;
  model = path.join(dir, 'finetuned');
  await saveCheckpoint(model, cfg, params, vocab);
  disposeParams(params);
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('prune-sweep: heads+FFN against all four structures', () => {
  it('labels each row, compares the deeper one and keeps old readers working', async () => {
    const write = (name: string, transformer: object) => {
      const f = path.join(dir, `${name}.prune.json`);
      fs.writeFileSync(f, JSON.stringify({ transformer: { n_iters: 1, ...transformer } }));
      return f;
    };
    const configs = [
      write('hf-50', { target_encoder_params: 0.5 }),
      write('all-40', { target_encoder_params: 0.4, prune_layers: true, prune_hidden: true }),
    ];
    const settings = getPreset('tiny');
    settings.refinetune.epochs = 1;
    const run = path.join(dir, 'run');
    const s = await pruneSweep({ model, configs, run, dataFile, settings }, ctx);
    expect(s.rows.map((r) => [r.config, r.structures])).toEqual([
      ['(unpruned)', 'none'],
      ['hf-50', 'heads+FFN'],
      ['all-40', 'heads+FFN+layers+hidden'],
    ]);
    const [unpruned, hf, all] = s.rows;
    expect(unpruned.encoder_kept).toBe(1);
    for (const r of [hf, all]) expect(r.encoder_kept).toBeCloseTo(r.encoder_params / unpruned.encoder_params, 10);
    expect(all.encoder_kept).toBeLessThanOrEqual(0.4 + 1e-9);
    // all-40 is at most as large as hf-50, in the encoder and in the whole model (a smaller encoder
    // and no larger hidden size): compared with it both ways.
    expect(all.encoder_params).toBeLessThanOrEqual(hf.encoder_params);
    expect(all.params).toBeLessThanOrEqual(hf.params);
    const against = { config: 'hf-50', score_delta: all.score - hf.score };
    expect(all.vs_heads_ffn).toEqual({ ...against, encoder_params_ratio: all.encoder_params / hf.encoder_params });
    expect(all.vs_heads_ffn_model).toEqual({ ...against, params_ratio: all.params / hf.params });
    expect([hf.vs_heads_ffn, hf.vs_heads_ffn_model]).toEqual([undefined, undefined]);
    const saved = JSON.parse(fs.readFileSync(s.file, 'utf8'));
    expect(saved.rows[2].structures).toBe('heads+FFN+layers+hidden');
    const table = events.find((e) => e.type === 'table' && e.title.startsWith('prune-sweep'));
    expect(table?.type === 'table' && table.columns).toContain('structures');
    // The report panel: one series per structures value, this file as the engine wrote it.
    const m = reportMessage('t', undefined, saved);
    expect(m.problems).toEqual([]);
    expect(sweepSeries(m.sweep).map((x) => x.label)).toEqual(['unpruned', 'heads+FFN', 'heads+FFN+layers+hidden']);
    // The deeper checkpoint's prune-report.json, as the Runs tree, the Parameters panel and the report read it.
    const pruned = path.join(run, 'sweep', 'all-40');
    const report = JSON.parse(fs.readFileSync(path.join(pruned, 'prune-report.json'), 'utf8'));
    const view = readCheckpoint(pruned, readSafetensorsHeader);
    const st = view.tree!.structure!;
    expect(st.prunedFrom).toEqual({
      layersBefore: 3,
      layersKept: report.structure.layers_kept,
      hiddenBefore: 32,
    });
    expect(st.layers).toBe(report.structure.layers_kept.length);
    expect(st.hidden).toBe(report.structure.hidden_after);
    expect(st.headSize).toBe(report.structure.head_size);
    const shown = reportMessage('t', report, undefined);
    expect(shown.problems).toEqual([]);
    expect(shown.structure).toMatchObject({ layersBefore: 3, hiddenBefore: 32, hiddenAfter: st.hidden });
    expect(shown.layers.filter((l) => !l.removed).map((l) => l.layer)).toEqual(report.structure.layers_kept);
  });
});
