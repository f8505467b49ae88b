// auto follows bench's measurements (backend/speeds.ts): what bench records, how the nearest
// measured shape is found, when webgpu is left out for the CPU path, and that a file there that is
// not ours is never replaced.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { autoDecision, backendLabel, initBackend } from '../src/engine/backend';
import {
  measuredChoice,
  readSpeeds,
  recordSpeeds,
  sizeOfConfig,
  SpeedEntry,
  speedsFile,
  workPerToken,
} from '../src/engine/backend/speeds';
import { autoHint } from '../src/engine/commands';
import { makeConfig } from '../src/engine/model/config';
import { bench } from '../src/engine/stages/bench';
import { resolveSettings } from '../src/engine/config/settings';

const CPU = 'Test CPU';
const H200 = 'webgpu (NVIDIA H200)';
const size = (layers: number, hidden: number, ffn = 4 * hidden) => ({ layers, hidden, attention: hidden, ffn });
const entry = (
  backend: string,
  shape: string,
  s: ReturnType<typeof size>,
  train: number,
  infer: number,
  at = '2026-12-01T00:00:00Z',
): SpeedEntry => ({
  backend,
  cpu: CPU,
  shape,
  size: s,
  train_tokens_per_s: train,
  infer_tokens_per_s: infer,
  measured: at,
});
// The GPU issue's figures: the H200 and a Xeon's wasm+openblas.
const MEASURED: SpeedEntry[] = [
  entry(H200, 'L2-H128', size(2, 128), 15501, 215897),
  entry('wasm+openblas', 'L2-H128', size(2, 128), 17248, 58565),
  entry(H200, 'L12-H768', size(12, 768), 2503, 58716),
  entry('wasm+openblas', 'L12-H768', size(12, 768), 150, 700),
];

beforeAll(async () => {
  await initBackend('wasm');
});

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'bp-speeds-'));
const made: string[] = [];
afterEach(() => {
  for (const d of made.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

describe('measuredChoice', () => {
  it('compares the backends on the measured shape nearest the model, for training or inference', () => {
    const small = size(2, 160); // near L2-H128
    expect(measuredChoice(MEASURED, [H200, 'wasm+openblas'], small, 'train', CPU)).toMatchObject({
      backend: 'wasm+openblas',
      why: expect.stringMatching(/training .*webgpu \(NVIDIA H200\) 15501 tok\/s on L2-H128 vs wasm\+openblas 17248/),
    });
    expect(measuredChoice(MEASURED, [H200, 'wasm+openblas'], small, 'infer', CPU)?.backend).toBe(H200);
    expect(measuredChoice(MEASURED, [H200, 'wasm+openblas'], size(12, 768), 'train', CPU)?.backend).toBe(H200);
  });

  it('gives no answer without a measurement of every candidate near the model, or on another CPU', () => {
    expect(measuredChoice(MEASURED, [H200, 'wasm'], size(2, 128), 'train', CPU)).toBeNull(); // no plain wasm
    expect(measuredChoice(MEASURED, [H200, 'wasm+openblas'], size(2, 128), 'train', 'Other CPU')).toBeNull();
    // L6-H384 is more than 4x the work of L2-H128 and less than a quarter of L12-H768's
    const mid = size(6, 384);
    expect(workPerToken(mid) / workPerToken(size(2, 128))).toBeGreaterThan(4);
    expect(workPerToken(size(12, 768)) / workPerToken(mid)).toBeGreaterThan(4);
    expect(measuredChoice(MEASURED, [H200, 'wasm+openblas'], mid, 'train', CPU)).toBeNull();
  });

  it('takes the newest of two measurements of the same shape', () => {
    const again = [...MEASURED, entry(H200, 'L2-H128', size(2, 128), 40000, 300000, '2026-12-02T00:00:00Z')];
    expect(measuredChoice(again, [H200, 'wasm+openblas'], size(2, 128), 'train', CPU)?.backend).toBe(H200);
  });

  it('sizes a pruned checkpoint by the heads and FFN neurons it kept', () => {
    const cfg = makeConfig(
      {
        hidden_size: 128,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        intermediate_size: 512,
        max_position_embeddings: 64,
        max_len: 64,
        hidden_dropout_prob: 0.1,
        attention_probs_dropout_prob: 0.1,
        initializer_range: 0.02,
      },
      100,
      'classification',
    );
    expect(sizeOfConfig(cfg)).toEqual({ layers: 2, hidden: 128, attention: 128, ffn: 512 });
    const pruned = { ...cfg, pruned_heads: { '0': [0, 1], '1': [3] }, intermediate_sizes: [100, 300] };
    expect(sizeOfConfig(pruned)).toEqual({ layers: 2, hidden: 128, attention: 2.5 * 32, ffn: 200 });
  });
});

describe('autoDecision', () => {
  const hint = { size: size(2, 128), kind: 'train' as const };
  it('leaves webgpu out where the CPU path was measured faster, and says so', () => {
    const d = autoDecision({ name: 'NVIDIA H200' }, 'wasm+openblas', { entries: MEASURED }, hint, CPU);
    expect(d.leaveOutWebgpu).toBe(true);
    expect(d.note).toMatch(/^auto: webgpu \(NVIDIA H200\) left out: wasm\+openblas measured faster for training/);
    const infer = autoDecision(
      { name: 'NVIDIA H200' },
      'wasm+openblas',
      { entries: MEASURED },
      { ...hint, kind: 'infer' },
      CPU,
    );
    expect(infer).toMatchObject({
      leaveOutWebgpu: false,
      note: expect.stringMatching(/^auto: webgpu \(NVIDIA H200\), measured faster for inference/),
    });
  });

  it('keeps webgpu without a measurement, and says how to make one; no GPU, no note', () => {
    const d = autoDecision(
      { name: 'NVIDIA H200' },
      'wasm+openblas',
      { entries: [], problem: 'x.json: not JSON' },
      hint,
      CPU,
    );
    expect(d.leaveOutWebgpu).toBe(false);
    expect(d.note).toMatch(
      /^auto: x\.json: not JSON\. auto: webgpu \(NVIDIA H200\); whether wasm\+openblas is faster .* not measured here \(bench --backend webgpu and bench --backend wasm/,
    );
    expect(autoDecision({ reason: 'no adapter' }, 'wasm', { entries: MEASURED }, hint, CPU)).toEqual({
      leaveOutWebgpu: false,
      note: null,
    });
  });
});

describe('autoHint', () => {
  it("is the checkpoint's size (--model, --from), else the settings' model; train or infer as the stage does", () => {
    const dir = tmp();
    made.push(dir);
    const cfg = { ...makeConfig(resolveSettings('quick').model, 50, 'classification'), pruned_heads: { '0': [0] } };
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(cfg));
    expect(autoHint({ trains: false }, { model: dir })).toEqual({ kind: 'infer', size: sizeOfConfig(cfg) });
    expect(autoHint({ trains: true }, { from: dir })?.kind).toBe('train');
    const s = resolveSettings('quick');
    expect(autoHint({ trains: true }, {}, s)).toEqual({
      kind: 'train',
      size: {
        layers: s.model.num_hidden_layers,
        hidden: s.model.hidden_size,
        attention: s.model.hidden_size,
        ffn: s.model.intermediate_size,
      },
    });
    // unreadable: no hint (the stage reports the checkpoint's problem itself)
    expect(autoHint({ trains: false }, { model: path.join(dir, 'missing') }, s)).toBeUndefined();
  });
});

describe('the speeds file', () => {
  it('bench records what it measured; a second bench of the same shape replaces it', async () => {
    const dir = tmp();
    made.push(dir);
    const old = process.env.BERT_PRUNER_CACHE_DIR;
    process.env.BERT_PRUNER_CACHE_DIR = dir;
    try {
      const file = speedsFile();
      expect(file).toBe(path.join(dir, 'backend-speeds.json'));
      const ctx = { emit: () => {}, backend: backendLabel() };
      await bench({ shapes: ['L1-H64-A4-F128'], steps: 1, torch: false }, ctx);
      const first = readSpeeds(file).entries;
      expect(first).toHaveLength(1);
      expect(first[0]).toMatchObject({
        backend: backendLabel(),
        shape: 'L1-H64-A4-F128',
        size: { layers: 1, hidden: 64, attention: 64, ffn: 128 },
      });
      await bench({ shapes: ['L1-H64-A4-F128'], steps: 1, torch: false }, ctx);
      const second = readSpeeds(file).entries;
      expect(second).toHaveLength(1);
      expect(second[0].measured >= first[0].measured).toBe(true);
      // --threads: the CPU path ran otherwise than stages run it; not recorded
      fs.rmSync(file);
      await bench({ shapes: ['L1-H64-A4-F128'], steps: 1, torch: false, threads: 1 }, ctx);
      expect(fs.existsSync(file)).toBe(false);
    } finally {
      if (old === undefined) delete process.env.BERT_PRUNER_CACHE_DIR;
      else process.env.BERT_PRUNER_CACHE_DIR = old;
    }
  }, 120_000);

  it('never replaces a file that is not ours; ignores one too big or with bad entries', () => {
    const dir = tmp();
    made.push(dir);
    const file = path.join(dir, 'backend-speeds.json');
    fs.writeFileSync(file, '{"mine": true}\n');
    const r = recordSpeeds(MEASURED, file);
    expect(r).toEqual({ problem: expect.stringMatching(/not bert-pruner's backend speeds .* left as it is/) });
    expect(fs.readFileSync(file, 'utf8')).toBe('{"mine": true}\n');
    fs.writeFileSync(file, 'not json');
    expect(readSpeeds(file)).toEqual({ entries: [], problem: expect.stringMatching(/not JSON/) });
    expect(fs.readFileSync(file, 'utf8')).toBe('not json');
    fs.writeFileSync(file, ' '.repeat((1 << 20) + 1));
    expect(readSpeeds(file).problem).toMatch(/over 1048576 bytes/);

    fs.rmSync(file);
    expect(recordSpeeds(MEASURED, file)).toEqual({ file });
    const raw = JSON.parse(fs.readFileSync(file, 'utf8'));
    raw.entries.push({ backend: 'wasm', shape: 'x', train_tokens_per_s: -1 }, null);
    fs.writeFileSync(file, JSON.stringify(raw));
    expect(readSpeeds(file)).toEqual({ entries: MEASURED });
  });

  it("reads an adapter's matmul record only where its tiles left out are names with reasons", () => {
    const dir = tmp();
    made.push(dir);
    const file = path.join(dir, 'backend-speeds.json');
    const t = (adapter: string, rejected: unknown) => ({
      adapter,
      version: 4,
      measured: '2026-12-06T00:00:00Z',
      choices: { 'NT:small': 'tfjs' },
      ms: { 'NT:small': { tfjs: 1 } },
      rejected,
    });
    const matmul = {
      ok: t('ok', { '64x64x16-4x4': 'did not compile: x (NT:small)' }),
      none: t('none', undefined),
      number: t('number', 5),
      values: t('values', { '64x64x16-4x4': 1 }),
    };
    fs.writeFileSync(file, JSON.stringify({ format: 'bert-pruner-backend-speeds', version: 1, entries: [], matmul }));
    const kept = readSpeeds(file).matmul!;
    expect(Object.keys(kept).sort()).toEqual(['none', 'ok']);
    expect(kept.ok.rejected).toEqual(matmul.ok.rejected);
  });
});
