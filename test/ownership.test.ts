// Deleting what is not ours (docs/robustness.md, threat model): a command replaces or deletes only
// what bert-pruner made (the .bert-pruner marker, run.json, or the older checkpoint layout), refuses
// any other existing target before any work starts unless --force, never writes through a symbolic
// link out of its run, and holds its run alone (run.lock).
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFileAtomic } from '../src/engine/io/atomic';
import { checkFileReplaceable, checkReplaceable, holdRun, isOurs, LOCK_FILE, MARKER } from '../src/engine/io/ownership';
import { expectUserError, ROOT } from './helpers/cli';
import { bp, demoModel, TINY } from './robust-helpers';

let root = '';
let run = '';
let model = '';
let test = '';
let prune = '';

const write = (f: string, content: string) => {
  fs.mkdirSync(path.dirname(f), { recursive: true });
  fs.writeFileSync(f, content);
  return f;
};
/** A folder as HF's hub leaves it: another tool's model, not ours. */
const hfFolder = (dir: string) => {
  write(path.join(dir, 'README.md'), '# a downloaded model\n');
  write(path.join(dir, 'pytorch_model.bin'), 'weights');
  write(path.join(dir, 'config.json'), JSON.stringify({ model_type: 'bert', hidden_size: 768 }));
  write(path.join(dir, 'model.safetensors'), 'weights');
  write(path.join(dir, 'vocab.txt'), '[PAD]\n');
  return dir;
};

afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
beforeAll(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'bp-ownership-'));
  ({ run, test, model } = await demoModel(root));
  prune = write(path.join(root, 'vocab.prune.json'), JSON.stringify({ vocabulary: { min_count: 1 } }));
});

describe('what counts as ours', () => {
  it('a checkpoint carries the marker; a folder with the older layout counts as ours, an HF folder does not', () => {
    expect(JSON.parse(fs.readFileSync(path.join(model, MARKER), 'utf8'))).toMatchObject({ kind: 'checkpoint' });
    expect(isOurs(model, 'checkpoint')).toBe(true);
    const legacy = path.join(root, 'legacy');
    fs.cpSync(model, legacy, { recursive: true });
    fs.rmSync(path.join(legacy, MARKER));
    expect(isOurs(legacy, 'checkpoint')).toBe(true); // config.json with max_len + weights + vocab
    expect(isOurs(run, 'run')).toBe(true); // run.json
    expect(isOurs(hfFolder(path.join(root, 'hf-unit')), 'checkpoint')).toBe(false);
    const notOurs = /hf-unit: exists and is not a checkpoint made by bert-pruner; refusing to replace it/;
    expect(() => checkReplaceable(path.join(root, 'hf-unit'), 'checkpoint', { flag: '--out' })).toThrow(notOurs);
    expect(() => checkReplaceable(path.join(root, 'hf-unit'), 'checkpoint', { flag: '--out' })).toThrow(
      /\(choose another --out, or pass --force to replace it\)/,
    );
    // ours, but another kind: a run folder is never replaced by a checkpoint
    expect(() => checkReplaceable(run, 'checkpoint')).toThrow(/is not a checkpoint made by bert-pruner/);
    fs.mkdirSync(path.join(root, 'empty'));
    checkReplaceable(path.join(root, 'empty'), 'checkpoint');
    checkReplaceable(path.join(root, 'missing'), 'checkpoint');
  });

  it('a file is overwritten only when it holds our predictions or evaluation (or is empty)', () => {
    const preds = write(path.join(root, 'p.jsonl'), '{"id":"1","probs":[0.1],"labels":[]}\n');
    checkFileReplaceable(preds, 'predictions');
    checkFileReplaceable(write(path.join(root, 'empty.jsonl'), ''), 'predictions');
    const ev = write(path.join(root, 'e.json'), JSON.stringify({ model: 'm', data: 'd', per_label: [] }));
    checkFileReplaceable(ev, 'evaluation');
    const cfgFile = path.join(model, 'config.json');
    const notOurs = /config\.json: exists and is not a predictions file made by bert-pruner; refusing to overwrite it/;
    expect(() => checkFileReplaceable(cfgFile, 'predictions', { flag: '--out' })).toThrow(notOurs);
    expect(() => checkFileReplaceable(cfgFile, 'predictions', { flag: '--out' })).toThrow(/or pass --force/);
    expect(() => checkFileReplaceable(preds, 'evaluation')).toThrow(/not an evaluation file/);
    checkFileReplaceable(path.join(model, 'config.json'), 'predictions', { force: true });
  });
});

describe('the run lock and symbolic links (in-process)', () => {
  it('a second holder is refused, naming the first; release frees it; a stale lock is taken over', async () => {
    const dir = path.join(root, 'lock-run');
    const held = holdRun(dir);
    const lock = path.join(dir, LOCK_FILE);
    expect(JSON.parse(fs.readFileSync(lock, 'utf8'))).toMatchObject({ pid: process.pid, host: os.hostname() });
    const inUse = `run\\.lock: the run is in use by another bert-pruner process \\(pid ${process.pid} on `;
    expect(() => holdRun(dir)).toThrow(new RegExp(inUse));
    held.release();
    expect(fs.existsSync(lock)).toBe(false);
    // a lock left by a process that is gone (kill -9): taken over with a warning
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'run.json'), JSON.stringify({ version: 1, stages: {} }));
    const child = spawn(process.execPath, ['-e', '0']);
    await new Promise((resolve) => child.on('exit', resolve));
    const stale = { pid: child.pid, host: os.hostname(), started: 'then', command: 'pretrain' };
    fs.writeFileSync(lock, JSON.stringify(stale));
    const warnings: string[] = [];
    const again = holdRun(dir, { warn: (m) => warnings.push(m) });
    expect(warnings.join('\n')).toMatch(/taking over a stale lock \(pid \d+ .*'pretrain'/);
    again.release();
  });

  it('a folder that is not a run is refused unless --force', () => {
    const mine = write(path.join(root, 'documents', 'letter.txt'), 'dear ...');
    const notRun = /documents: exists and is not a run folder made by bert-pruner .*pass --force/;
    expect(() => holdRun(path.dirname(mine))).toThrow(notRun);
    holdRun(path.dirname(mine), { force: true }).release();
    expect(fs.readFileSync(mine, 'utf8')).toBe('dear ...');
  });

  it('writes under a held run never go through a link out of it; reading through it is fine', () => {
    const dir = path.join(root, 'link-run');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'run.json'), JSON.stringify({ version: 1, stages: {} }));
    const elsewhere = path.join(root, 'elsewhere-unit');
    write(path.join(elsewhere, 'x.txt'), 'x');
    const held = holdRun(dir);
    try {
      fs.symlinkSync(elsewhere, path.join(dir, 'finetune'));
      expect(fs.readFileSync(path.join(dir, 'finetune', 'x.txt'), 'utf8')).toBe('x');
      const through = /finetune: is a symbolic link to .*elsewhere-unit, outside the run/;
      expect(() => writeFileAtomic(path.join(dir, 'finetune', 'x.txt'), 'y')).toThrow(through);
      expect(fs.readFileSync(path.join(elsewhere, 'x.txt'), 'utf8')).toBe('x');
      writeFileAtomic(path.join(dir, 'ok.txt'), 'fine'); // other writes go on
    } finally {
      held.release();
    }
    expect(() => holdRun(dir)).toThrow(/finetune: is a symbolic link to .*outside the run/); // refused up front
  });
});

describe('the CLI replaces only what it made', () => {
  const pruneArgs = (out: string) => [
    'prune',
    '--model',
    model,
    '--prune-config',
    prune,
    '--data',
    test,
    '--out',
    out,
    ...TINY,
  ];

  it('prune --out onto a downloaded HF model folder is refused without --force, replaced with --force', async () => {
    const hf = hfFolder(path.join(root, 'hf'));
    const r = await bp(pruneArgs(hf));
    expectUserError(r, /hf: exists and is not a checkpoint made by bert-pruner; refusing to replace it \(.*--force/);
    expect(fs.readFileSync(path.join(hf, 'pytorch_model.bin'), 'utf8')).toBe('weights');
    expect(fs.existsSync(path.join(hf, 'README.md'))).toBe(true);
    const f = await bp([...pruneArgs(hf), '--force']);
    expect(f.code, f.stderr).toBe(0);
    expect(fs.existsSync(path.join(hf, 'pytorch_model.bin'))).toBe(false);
    expect(isOurs(hf, 'checkpoint')).toBe(true);
  });

  it("re-running prune onto its own output needs no flag, and a user's X-recovery folder survives", async () => {
    const out = path.join(root, 'pruned');
    const keep = write(path.join(root, 'pruned-recovery', 'keep.txt'), 'mine');
    for (let i = 0; i < 2; i++) {
      const r = await bp(pruneArgs(out));
      expect(r.code, r.stderr).toBe(0);
    }
    expect(fs.readFileSync(keep, 'utf8')).toBe('mine');
    expect(fs.readdirSync(root).filter((n) => n.includes('bert-pruner-recovery'))).toEqual([]);
  });

  it("predict --out onto a checkpoint's config.json is refused and the file kept", async () => {
    const cfgFile = path.join(model, 'config.json');
    const before = fs.readFileSync(cfgFile);
    const r = await bp(['predict', '--model', model, '--data', test, '--out', cfgFile, ...TINY]);
    expectUserError(r, /config\.json: exists and is not a predictions file made by bert-pruner; refusing to overwrite/);
    expect(fs.readFileSync(cfgFile).equals(before)).toBe(true);
    const out = path.join(root, 'preds.jsonl');
    for (let i = 0; i < 2; i++) {
      const ok = await bp(['predict', '--model', model, '--data', test, '--out', out, ...TINY]);
      expect(ok.code, ok.stderr).toBe(0); // our own predictions are replaced without a flag
    }
  });

  it('corpus-vocab with --data inside its own run is refused and does not rewrite train.csv', async () => {
    const train = path.join(run, 'data', 'train.csv');
    const before = fs.readFileSync(train);
    const own = path.join(run, 'data');
    const r = await bp(['corpus-vocab', '--data', own, '--run', run, '--test-split', '0.2', ...TINY]);
    expectUserError(r, /--data .*run\/data: is the run's own copy of its data/);
    expect(fs.readFileSync(train).equals(before)).toBe(true);
  });

  it('a symbolic link runs/r/finetune -> elsewhere makes a write refused before any work', async () => {
    const elsewhere = write(path.join(root, 'elsewhere', 'precious.txt'), 'keep');
    const link = path.join(run, 'finetune');
    fs.symlinkSync(path.dirname(elsewhere), link);
    try {
      const r = await bp(['finetune', '--run', run, ...TINY]);
      expectUserError(r, /run\/finetune: is a symbolic link to .*elsewhere, outside the run .*not write through it/);
      expect(fs.readdirSync(path.dirname(elsewhere))).toEqual(['precious.txt']);
    } finally {
      fs.rmSync(link);
    }
  });

  it('two processes on the same run: the second is refused while the first holds run.lock', async () => {
    const long = write(path.join(root, 'long.bert-pruner.json'), JSON.stringify({ pretrain: { epochs: 500 } }));
    const bin = path.join(ROOT, 'bin', 'bert-pruner.js');
    const args = [bin, 'pretrain', '--run', run, '--config', long, '--json-events', ...TINY];
    const first = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    first.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const closed = new Promise<number | null>((resolve) => first.on('close', (code) => resolve(code)));
    const started = new Promise<void>((resolve) => {
      let buf = '';
      first.stdout.setEncoding('utf8').on('data', (d: string) => {
        buf += d;
        if (/"type":"step"/.test(buf)) resolve();
      });
    });
    const early = closed.then(() => {
      throw new Error(`the first pretrain ended early:\n${stderr}`);
    });
    await Promise.race([started, early]);
    const lock = JSON.parse(fs.readFileSync(path.join(run, LOCK_FILE), 'utf8'));
    expect(lock).toMatchObject({ pid: first.pid, command: 'pretrain' });
    const second = await bp(['finetune', '--run', run, ...TINY]);
    const inUse = `run\\.lock: the run is in use by another bert-pruner process \\(pid ${first.pid} on .*'pretrain'`;
    expectUserError(second, new RegExp(inUse));
    first.kill('SIGINT');
    expect(await closed).toBe(130);
    expect(fs.existsSync(path.join(run, LOCK_FILE))).toBe(false);
  });
});
