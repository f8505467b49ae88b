// Bad input through the CLI, where the message takes another path than the parser and validator
// tests cover: impossible prune targets refused before any work starts (prune, prune-sweep,
// pipeline), config files that are code or try prototype tricks, data paths that are folders,
// binary, empty or unlabeled, and paths that would escape the runs folder or overwrite an input.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectUserError } from './helpers/cli';
import { bp, demoModel, TINY } from './robust-helpers';

let root = '';
let run = '';
let model = ''; // a classifier with the tiny preset's shape: 2 layers x 2 heads, FFN 64
let test = '';
const file = (name: string, content: string | Buffer) => {
  const f = path.join(root, name);
  fs.mkdirSync(path.dirname(f), { recursive: true });
  fs.writeFileSync(f, content);
  return f;
};
const json = (name: string, v: unknown) => file(name, JSON.stringify(v));
const events = (stdout: string) =>
  stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l));

afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
beforeAll(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'bp-robust-inputs-'));
  ({ run, test, model } = await demoModel(root));
});

describe('impossible prune targets are refused before any work starts', () => {
  const target = { target_ffn_size: 32, target_num_of_heads: 1, n_iters: 2 };
  const cases: [string, object, RegExp][] = [
    [
      'an unknown key',
      { transformer: { ...target, n_iter: 2 } },
      /bad\.prune\.json: \/transformer: unknown key 'n_iter' \(did you mean 'n_iters'\?\)/,
    ],
    [
      'more heads than the model has',
      { transformer: { ...target, target_num_of_heads: 3 } },
      /bad\.prune\.json: transformer\.target_num_of_heads 3 is more than the model has \(4 heads in 2 layers, 2\.00 per layer\)/,
    ],
    [
      'a bigger FFN than the model has',
      { transformer: { ...target, target_ffn_size: 65 } },
      /transformer\.target_ffn_size 65 is more than the model has \(64\.0 neurons per layer/,
    ],
    [
      'an FFN size not a multiple of multiple_of',
      { transformer: { ...target, target_ffn_size: 30, ffn_even_masking: false, multiple_of: 8 } },
      /transformer\.target_ffn_size 30 is not a multiple of transformer\.multiple_of 8 \(e\.g\. 24 or 32\)/,
    ],
  ];
  for (const [what, config, message] of cases) {
    it(`prune: ${what}`, async () => {
      const out = path.join(root, 'pruned');
      const r = await bp([
        'prune',
        '--model',
        model,
        '--config',
        json('bad.prune.json', config),
        '--data',
        test,
        '--out',
        out,
        '--json-events',
        ...TINY,
      ]);
      expectUserError(r, message);
      // No scoring, no iteration.
      expect(events(r.stdout).filter((e) => e.type === 'log' || e.type === 'table')).toEqual([]);
      expect(fs.existsSync(out)).toBe(false);
    });
  }

  it('prune-sweep checks every config before pruning the first', async () => {
    const ok = json('ok.prune.json', { transformer: target });
    const bad = json('bad.prune.json', { transformer: { ...target, target_num_of_heads: 3 } });
    const r = await bp(['prune-sweep', '--model', model, '--configs', ok, bad, '--run', run, '--json-events', ...TINY]);
    expectUserError(r, /bad\.prune\.json: transformer\.target_num_of_heads 3 is more than the model has/);
    // The stage is recorded (started, then failed) and nothing else happened: no pruning, no scoring.
    const work = events(r.stdout).filter((e) => !['backend', 'stage-start', 'stage-end'].includes(e.type));
    expect(work).toEqual([]);
    expect(fs.existsSync(path.join(run, 'sweep'))).toBe(false);
  });

  it('pipeline checks its prune targets against its model settings before corpus-vocab', async () => {
    const fresh = path.join(root, 'fresh');
    const r = await bp([
      'pipeline',
      '--data',
      path.join(root, 'data'),
      '--run',
      fresh,
      '--config',
      json('s.json', { prune: { transformer: { target_num_of_heads: 3 } } }),
      ...TINY,
    ]);
    expectUserError(r, /settings prune: transformer\.target_num_of_heads 3 is more than the model has/);
    expect(fs.existsSync(fresh)).toBe(false);
  });
});

describe('configs are data, never code', () => {
  it('a config file with code in it is a JSON error and the code never runs', async () => {
    const marker = path.join(root, 'PWNED');
    const evil = file(
      'evil.bert-pruner.json',
      `require('fs').writeFileSync(${JSON.stringify(marker)}, 'x'); module.exports = {};\n`,
    );
    expectUserError(
      await bp(['pretrain', '--run', run, '--config', evil, ...TINY]),
      /evil\.bert-pruner\.json:1:1: invalid JSON/,
    );
    expect(fs.existsSync(marker)).toBe(false);
  });

  it('__proto__ and constructor keys are unknown keys, not prototype writes', async () => {
    const p = file(
      'proto.bert-pruner.json',
      '{"__proto__": {"seed": 1}, "finetune": {"constructor": {"prototype": {"x": 1}}}}',
    );
    const r = await bp(['pretrain', '--run', run, '--config', p, ...TINY]);
    expectUserError(r, /proto\.bert-pruner\.json: \(top level\): unknown key '__proto__'/);
    expect(r.stderr).toMatch(/\/finetune: unknown key 'constructor'/);
  });
});

describe('data files where the CLI path differs from the parser tests', () => {
  it('a data folder that is a file, a train.csv that is a folder', async () => {
    expectUserError(
      await bp(['corpus-vocab', '--data', test, '--run', path.join(root, 'r1'), ...TINY]),
      /test\.csv: not a data folder \(it needs train\.csv/,
    );
    const d = path.join(root, 'dirdata');
    fs.mkdirSync(path.join(d, 'train.csv'), { recursive: true });
    expectUserError(
      await bp(['corpus-vocab', '--data', d, '--run', path.join(root, 'r2'), '--test-split', '0.2', ...TINY]),
      /train\.csv: is a directory, expected a GAIIC csv file/,
    );
  });

  it('evaluate on binary garbage, an empty file, unlabeled rows, a label out of range', async () => {
    const ev = (f: string) => bp(['evaluate', '--model', model, '--data', f, ...TINY]);
    expectUserError(
      await ev(file('garbage.csv', Buffer.from([0x50, 0x4b, 0x03, 0x04, 0x00, 0xff, 0x10]))),
      /garbage\.csv: not a text file \(binary data at byte 4\)/,
    );
    expectUserError(await ev(file('empty.csv', '')), /empty\.csv: no rows \(the file is empty\)/);
    expectUserError(await ev(file('nolabels.csv', '1|,|5 6 7|,|2\n2|,|5 6 8\n')), /nolabels\.csv:2: no label field/);
    expectUserError(
      await ev(file('label17.csv', '1|,|5 6 7|,|2\n2|,|5 6 8|,|17\n')),
      /label17\.csv:2: label '17' is outside 0\.\.16/,
    );
  });

  it('BOM, CRLF and blank lines give the same evaluation as the clean file', async () => {
    const clean = await bp(['evaluate', '--model', model, '--data', test, '--json', ...TINY]);
    expect(clean.code, clean.stderr).toBe(0);
    const messy = file('messy.csv', '\ufeff' + fs.readFileSync(test, 'utf8').replace(/\n/g, '\r\n\r\n'));
    const r = await bp(['evaluate', '--model', model, '--data', messy, '--json', ...TINY]);
    expect(r.code, r.stderr).toBe(0);
    // The same evaluation; only the file it names differs.
    expect({ ...JSON.parse(r.stdout), data: 'x' }).toEqual({ ...JSON.parse(clean.stdout), data: 'x' });
  });
});

describe('paths: nothing escapes the runs folder, no output overwrites an input', () => {
  it("every command that takes --run refuses '..' before doing anything", async () => {
    const argsOf: Record<string, string[]> = {
      'corpus-vocab': ['--data', 'd'],
      pretrain: [],
      finetune: [],
      refinetune: ['--model', model],
      evaluate: ['--model', model, '--data', test],
      prune: ['--model', model, '--config', 'x.prune.json', '--out', 'o'],
      'prune-sweep': ['--model', model, '--configs', 'x.prune.json'],
      pipeline: ['--data', 'd'],
    };
    const tries = [
      ...Object.entries(argsOf).map(([cmd, extra]) => [cmd, '../up', extra] as const),
      ['pretrain', 'a/../../up', []] as const,
      ['pretrain', '..\\up', []] as const,
    ];
    for (const [cmd, bad, extra] of tries) {
      const r = await bp([cmd, '--run', bad, ...extra, ...TINY], root);
      expectUserError(r, /'\.\.' is not allowed in a run name or path/);
    }
    expect(fs.readdirSync(path.dirname(root)).filter((n) => n === 'up')).toEqual([]);
  });

  it('--out that is a folder but not a checkpoint is refused, not replaced', async () => {
    const prune = json('fine.prune.json', { vocabulary: { min_count: 1 } });
    const before = fs.readdirSync(run).sort();
    for (const out of [run, root, path.join(run, 'data')]) {
      const r = await bp(['prune', '--model', model, '--config', prune, '--data', test, '--out', out, ...TINY]);
      expectUserError(r, /exists and is not a checkpoint made by bert-pruner; refusing to replace it/);
    }
    expect(fs.readdirSync(run).sort()).toEqual(before);
    expect(fs.existsSync(test)).toBe(true);
  });

  it('an output that is one of the inputs is refused', async () => {
    const prune = json('fine.prune.json', { vocabulary: { min_count: 1 } });
    const config = fs.readFileSync(path.join(model, 'config.json'));
    expectUserError(
      await bp(['prune', '--model', model, '--config', prune, '--data', test, '--out', model + '/', ...TINY]),
      /--out .*: is the same as --model/,
    );
    expectUserError(
      await bp(['refinetune', '--model', model, '--run', run, '--out', model, ...TINY]),
      /--out .*: is the same as --model/,
    );
    const data = fs.readFileSync(test);
    expectUserError(
      await bp(['predict', '--model', model, '--data', test, '--out', test, ...TINY]),
      /--out .*test\.csv: is the same as --data/,
    );
    expect(fs.readFileSync(path.join(model, 'config.json')).equals(config)).toBe(true);
    expect(fs.readFileSync(test).equals(data)).toBe(true);
  });

  it('demo-data does not overwrite a folder of real data, but regenerates its own', async () => {
    const mine = path.join(root, 'mine');
    fs.mkdirSync(mine);
    fs.writeFileSync(path.join(mine, 'train.csv'), '1|,|5 6 7|,|2\n');
    expectUserError(
      await bp(['demo-data', '--out', mine]),
      /mine\/train\.csv: exists and is not demo data; refusing to overwrite it/,
    );
    expect(fs.readFileSync(path.join(mine, 'train.csv'), 'utf8')).toBe('1|,|5 6 7|,|2\n');
    const again = await bp(['demo-data', '--out', path.join(root, 'data'), '--train-rows', '120', '--test-rows', '30']);
    expect(again.code, again.stderr).toBe(0);
  });
});
