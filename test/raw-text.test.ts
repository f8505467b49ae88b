// A raw-text round trip through the CLI: demo-data --format jsonl -> corpus-vocab -> pretrain ->
// finetune -> evaluate and predict on the raw-text test file, with the tiny preset and few rows.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { bp, expectUserError } from './helpers/cli';

const d = fs.mkdtempSync(path.join(os.tmpdir(), 'bp-raw-text-'));
afterAll(() => fs.rmSync(d, { recursive: true, force: true }));

describe('raw-text data (jsonl) end to end', () => {
  it('demo-data --format jsonl, corpus-vocab, pretrain, finetune, evaluate, predict', async () => {
    const data = path.join(d, 'data');
    const run = path.join(d, 'run');
    const ok = async (args: string[]) => {
      const r = await bp([...args, '--backend', 'wasm']);
      expect(r.code, `${args.join(' ')}\n${r.stderr}`).toBe(0);
      return r;
    };
    await ok(['demo-data', '--out', data, '--format', 'jsonl', '--train-rows', '120', '--test-rows', '30']);
    expect(fs.readdirSync(data).sort()).toEqual(expect.arrayContaining(['train.jsonl', 'test.jsonl']));
    const first = JSON.parse(fs.readFileSync(path.join(data, 'train.jsonl'), 'utf8').split('\n')[0]);
    expect(first.text).toMatch(/^[a-z]+( [a-z]+)*$/);

    await ok(['corpus-vocab', '--data', data, '--run', run, '--preset', 'tiny']);
    const vocab = fs.readFileSync(path.join(run, 'vocab', 'vocab.txt'), 'utf8').split('\n');
    expect(vocab.slice(0, 5)).toEqual(['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']);
    expect(vocab.length - 1).toBeLessThanOrEqual(2000); // the tiny preset's model.vocab_size
    expect(fs.existsSync(path.join(run, 'data', 'train.jsonl'))).toBe(true);

    await ok(['pretrain', '--run', run]);
    await ok(['finetune', '--run', run]);
    const r = await ok([
      'evaluate',
      '--model',
      path.join(run, 'finetune'),
      '--data',
      path.join(data, 'test.jsonl'),
      '--json',
    ]);
    const ev = JSON.parse(r.stdout);
    expect(ev.rows ?? ev.metrics?.rows).toBe(30);
    expect(JSON.stringify(ev)).toMatch(/"score":0\.\d+/);

    const out = path.join(d, 'pred.jsonl');
    await ok(['predict', '--model', path.join(run, 'finetune'), '--data', path.join(data, 'test.jsonl'), '--out', out]);
    expect(fs.readFileSync(out, 'utf8').trim().split('\n')).toHaveLength(30);

    // A raw-text file with a label outside 0..16: one line naming the file and line.
    const bad = path.join(d, 'bad.jsonl');
    fs.writeFileSync(bad, '{"text": "baba", "labels": [0]}\n{"text": "beba", "labels": [17]}\n');
    expectUserError(
      await bp(['evaluate', '--model', path.join(run, 'finetune'), '--data', bad]),
      /bad\.jsonl:2: label 17 is outside 0\.\.16/,
    );
  }, 300_000);
});
