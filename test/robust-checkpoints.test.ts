// Bad checkpoints and a diverging run, through the CLI: a truncated safetensors file, a header that
// lies about sizes or offsets, shapes that do not match config.json, a missing vocab.txt, a NaN
// weight, a broken config.json; and a loss that becomes NaN. Each is one clear message (exit 2, no
// stack trace), and nothing the run had before is overwritten.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getPreset } from '../src/engine/config/presets';
import { readVocab } from '../src/engine/data/vocab';
import { saveCheckpoint } from '../src/engine/io/checkpoint';
import { makeConfig } from '../src/engine/model/config';
import { disposeParams, initParams } from '../src/engine/model/params';
import { expectUserError } from './helpers/cli';
import { bp, TINY, snapshot, demoRun } from './robust-helpers';

let root = '';
let run = '';
let good = '';
const conf = (name: string, value: unknown) => {
  const f = path.join(root, name);
  fs.writeFileSync(f, JSON.stringify(value));
  return f;
};

/** A copy of the good checkpoint, damaged by `damage`. */
function damaged(name: string, damage: (dir: string) => void): string {
  const dir = path.join(root, name);
  fs.cpSync(good, dir, { recursive: true });
  damage(dir);
  return dir;
}

/** Rewrite the JSON header of a safetensors file (the data buffer is kept as it is). */
function rewriteHeader(
  file: string,
  edit: (h: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>) => void,
): void {
  const bytes = fs.readFileSync(file);
  const n = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8'));
  edit(header);
  let json = Buffer.from(JSON.stringify(header));
  json = Buffer.concat([json, Buffer.alloc((8 - (json.length % 8)) % 8, 0x20)]);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  fs.writeFileSync(file, Buffer.concat([len, json, bytes.subarray(8 + n)]));
}

afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
beforeAll(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'bp-robust-ckpt-'));
  run = path.join(root, 'run');
  await demoRun(root, run, 200, 40);
  // A freshly initialised classifier on the run's vocabulary: the starting point for fine-tuning.
  const vocab = readVocab(path.join(run, 'vocab'));
  const cfg = makeConfig(getPreset('tiny').model, vocab.tokens.length, 'classification');
  const params = initParams(cfg, { mlm: false, classifier: true, seed: 5 });
  good = path.join(root, 'good');
  await saveCheckpoint(good, cfg, params, vocab);
  disposeParams(params);
  // The run's previous results: one epoch of fine-tuning (finetune/ and finetune-last/).
  const r = await bp([
    'finetune',
    '--run',
    run,
    '--from',
    good,
    ...TINY,
    '--config',
    conf('one.json', { finetune: { epochs: 1 } }),
  ]);
  expect(r.code, r.stderr).toBe(0);
});

describe('bad checkpoints: a clear error and nothing overwritten', () => {
  const W = 'model.safetensors';
  const cases: [string, (dir: string) => void, RegExp][] = [
    [
      'truncated safetensors',
      (d) => fs.truncateSync(path.join(d, W), Math.floor(fs.statSync(path.join(d, W)).size * 0.6)),
      /model\.safetensors: tensor '.+': data_offsets \[\d+, \d+\] are outside the \d+-byte data buffer \(truncated file\?\)/,
    ],
    [
      'header lies about a size',
      (d) => rewriteHeader(path.join(d, W), (h) => void h['classifier.weight'].shape[0]++),
      /model\.safetensors: tensor 'classifier\.weight': F32 shape \[18, 32\] needs 2304 bytes but data_offsets \[\d+, \d+\] span 2176/,
    ],
    [
      'header lies about an offset',
      (d) =>
        rewriteHeader(path.join(d, W), (h) => {
          const first = Object.values(h).find((t) => t.data_offsets?.[0] === 0)!;
          first.data_offsets = [first.data_offsets[0] + 4, first.data_offsets[1] + 4];
        }),
      /model\.safetensors: tensor '.+': data_offsets start at 4 but the data buffer starts at 0, leaving a 4-byte hole/,
    ],
    [
      'shapes that do not match config.json',
      (d) => {
        const c = JSON.parse(fs.readFileSync(path.join(d, 'config.json'), 'utf8'));
        fs.writeFileSync(path.join(d, 'config.json'), JSON.stringify({ ...c, intermediate_size: 48 }));
      },
      /model\.safetensors: tensor 'bert\.encoder\.layer\.0\.intermediate\.dense\.weight' has shape \[64,32\] but config\.json implies \[48,32\]/,
    ],
    ['missing vocab.txt', (d) => fs.rmSync(path.join(d, 'vocab.txt')), /vocab\.txt: vocab file not found/],
    [
      'a NaN weight',
      (d) => {
        const f = path.join(d, W);
        const b = fs.readFileSync(f);
        b.writeFloatLE(NaN, b.length - 4); // the last value of the last tensor
        fs.writeFileSync(f, b);
      },
      /model\.safetensors: tensor '.+' holds NaN at index \d+; the checkpoint is corrupt/,
    ],
    [
      'config.json that is not JSON',
      (d) => fs.writeFileSync(path.join(d, 'config.json'), '{"hidden_size": 32,\n  "vocab_size": }'),
      /config\.json:2:17: invalid JSON/,
    ],
  ];

  for (const [what, damage, message] of cases) {
    it(what, async () => {
      const bad = damaged(what.replace(/\W+/g, '-'), damage);
      const before = snapshot(run);
      const r = await bp(['finetune', '--run', run, '--from', bad, ...TINY]);
      expectUserError(r, message);
      expect(snapshot(run)).toEqual(before);
      const rec = JSON.parse(fs.readFileSync(path.join(run, 'run.json'), 'utf8')).stages.finetune;
      expect(rec.status).toBe('failed');
      expect(rec.error).toMatch(message);
    });
  }

  it('other commands say the same: evaluate, analyze and prune on a truncated checkpoint', async () => {
    const bad = path.join(root, 'truncated-safetensors');
    const test = path.join(run, 'data', 'test.csv');
    expectUserError(
      await bp(['evaluate', '--model', bad, '--data', test, ...TINY]),
      /outside the \d+-byte data buffer/,
    );
    expectUserError(await bp(['analyze', '--model', bad, ...TINY]), /outside the \d+-byte data buffer/);
    const out = path.join(root, 'pruned');
    expectUserError(
      await bp([
        'prune',
        '--model',
        bad,
        '--config',
        conf('p.prune.json', { transformer: { target_ffn_size: 32, target_num_of_heads: 1 } }),
        '--data',
        test,
        '--out',
        out,
        ...TINY,
      ]),
      /outside the \d+-byte data buffer/,
    );
    expect(fs.existsSync(out)).toBe(false);
  });
});

describe('a loss that becomes NaN', () => {
  it('stops naming the epoch and step, keeps the last good checkpoint, and the run resumes after', async () => {
    const before = snapshot(run);
    expect(JSON.parse(fs.readFileSync(path.join(run, 'finetune-last', 'train-state.json'), 'utf8')).epochsDone).toBe(1);
    // Epoch 2 with an absurd learning rate: the weights blow up within a step or two.
    const r = await bp([
      'finetune',
      '--run',
      run,
      '--from',
      good,
      '--resume',
      ...TINY,
      '--config',
      conf('nan.json', { finetune: { epochs: 3, lr: 1e30 } }),
    ]);
    expectUserError(
      r,
      /^error: finetune: the loss became (NaN|Infinity|-Infinity) at epoch 2, step \d+; stopped \(the last good checkpoint is kept\)/m,
    );
    expect(snapshot(run)).toEqual(before); // finetune/ and finetune-last/ untouched
    const rec = JSON.parse(fs.readFileSync(path.join(run, 'run.json'), 'utf8')).stages.finetune;
    expect(rec).toMatchObject({ status: 'failed', epochsDone: 1 });
    expect(rec.error).toMatch(/at epoch 2, step \d+/);

    // With a sane learning rate the same run goes on from epoch 1.
    const ok = await bp([
      'finetune',
      '--run',
      run,
      '--from',
      good,
      '--resume',
      ...TINY,
      '--config',
      conf('two.json', { finetune: { epochs: 2 } }),
    ]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stderr).toMatch(/resuming finetune after epoch 1/);
    expect(JSON.parse(fs.readFileSync(path.join(run, 'run.json'), 'utf8')).stages.finetune).toMatchObject({
      status: 'done',
      epochsDone: 2,
    });
  });
});
