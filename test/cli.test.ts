// The CLI as a user meets it: usage, and bad input answered with one clear message (exit 2, no
// stack trace) that names the file, line or JSON path.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli, expectUserError } from './helpers/cli';

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'bp-cli-'));

describe('CLI', () => {
  it('prints usage without a command and lists every stage', () => {
    const r = cli([]);
    expect(r.code).toBe(2);
    for (const s of [
      'demo-data',
      'corpus-vocab',
      'pretrain',
      'finetune',
      'evaluate',
      'predict',
      'analyze',
      'prune',
      'refinetune',
      'prune-sweep',
      'pipeline',
    ])
      expect(r.stdout).toContain(s);
  });

  it('unknown commands and options', () => {
    expectUserError(cli(['frobnicate']), /unknown command 'frobnicate'/);
    expectUserError(cli(['evaluate', '--modle', 'x']), /evaluate: Unknown option '--modle'/);
    expectUserError(cli(['evaluate', '--data', 'x.csv']), /evaluate: --model is required/);
    expectUserError(
      cli(['pipeline', '--data', 'd', '--run', 'r', '--preset', 'huge']),
      /unknown preset 'huge' \(valid: quick, gaiic, gaiic-deep, tiny\)/,
    );
    expectUserError(cli(['analyze', '--model', 'x', '--backend', 'gpu']), /--backend: 'gpu' is not one of/);
  });

  it('a missing checkpoint, a data folder without test.csv, a run name escaping runs/', () => {
    const d = tmp();
    fs.writeFileSync(path.join(d, 'train.csv'), '1|,|5 6 7|,|1\n');
    expectUserError(
      cli(['evaluate', '--model', path.join(d, 'nope'), '--data', path.join(d, 'train.csv'), '--backend', 'cpu']),
      /nope: not a checkpoint directory/,
    );
    expectUserError(
      cli(['evaluate', '--model', path.join(d, 'nope'), '--data', path.join(d, 'missing.csv'), '--backend', 'cpu']),
      /missing\.csv: file not found/,
    );
    expectUserError(
      cli(['corpus-vocab', '--data', d, '--run', path.join(d, 'run'), '--backend', 'cpu']),
      /has no test\.csv; pass --test-split/,
    );
    expectUserError(cli(['corpus-vocab', '--data', d, '--run', '../escape', '--backend', 'cpu'], d), /\.\./);
    expectUserError(
      cli(['analyze', '--model', path.join(d, 'nope'), '--baseline', path.join(d, 'gone'), '--backend', 'cpu']),
      /gone: no such checkpoint/,
    );
  });

  it('bad rows name file:line; --skip-bad-rows goes on and reports them', () => {
    const d = tmp();
    fs.writeFileSync(path.join(d, 'train.csv'), '1|,|5 6 7|,|1\n2|,|5 x 7|,|2\n3|,|8 9|,|3\n4|,|8 9|,|3\n');
    fs.writeFileSync(path.join(d, 'test.csv'), '9|,|5 6\n');
    const run = path.join(d, 'run');
    expectUserError(cli(['corpus-vocab', '--data', d, '--run', run, '--backend', 'cpu']), /train\.csv:2: .*'x'/);
    const r = cli(['corpus-vocab', '--data', d, '--run', run, '--backend', 'cpu', '--skip-bad-rows']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/skipped 1 bad row/);
    expect(JSON.parse(fs.readFileSync(path.join(run, 'run.json'), 'utf8')).stages['corpus-vocab'].status).toBe('done');
  });

  it('a settings file with a schema error names the JSON path', () => {
    const d = tmp();
    const cfg = path.join(d, 'bad.bert-pruner.json');
    fs.writeFileSync(cfg, JSON.stringify({ finetune: { epochs: 'two', lr: 0.1 }, modle: {} }));
    const r = cli(['pretrain', '--run', path.join(d, 'run'), '--config', cfg, '--backend', 'cpu']);
    expectUserError(r, /\/finetune\/epochs: must be integer/);
    expect(r.stderr).toMatch(/unknown key 'modle'/);
  });

  it('a settings file whose keys disagree names the file and both keys', () => {
    const d = tmp();
    const cfg = path.join(d, 'both.bert-pruner.json');
    fs.writeFileSync(cfg, JSON.stringify({ refinetune: { mask_augment: 0.2, distill_augment: 0.15 } }));
    const r = cli(['pretrain', '--run', path.join(d, 'run'), '--config', cfg, '--backend', 'cpu']);
    expectUserError(r, /both\.bert-pruner\.json \(over preset 'quick'\): refinetune\.mask_augment \(0\.2\) and /);
    expect(r.stderr).toMatch(/refinetune\.distill_augment \(0\.15\) both mask the tokens/);
  });
});
