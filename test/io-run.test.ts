import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadRun, openRun, runDir, runFile, safeRunPath, saveRun, updateStage } from '../src/engine/io/run';
import { userError } from './helpers/errors';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'io-run-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

describe('run.json', () => {
  it('openRun creates the directory and a version-1 manifest, and loads it the next time', () => {
    const dir = path.join(tmp, 'nested', 'quick');
    const m = openRun(dir, { preset: 'quick', data: { dir: 'data/demo', testSplit: 0.1, seed: 42 } });
    expect(m).toMatchObject({
      version: 1,
      name: 'quick',
      preset: 'quick',
      stages: {},
      data: { dir: 'data/demo', testSplit: 0.1, seed: 42 },
    });
    expect(m.created).toMatch(ISO);
    expect(m.updated).toMatch(ISO);
    const onDisk = JSON.parse(fs.readFileSync(path.join(dir, 'run.json'), 'utf8'));
    expect(onDisk).toEqual(m);

    const again = openRun(dir, { backend: 'wasm' });
    expect(again.created).toBe(m.created);
    expect(again.preset).toBe('quick'); // kept
    expect(again.backend).toBe('wasm'); // added
    expect(loadRun(dir)).toEqual(again);
  });

  it('updateStage merges fields and metrics, removes fields set to undefined, keeps other stages', () => {
    const dir = path.join(tmp, 'stages');
    openRun(dir);
    updateStage(dir, 'pretrain', { status: 'done', metrics: { loss: 2.5 }, checkpoint: 'pretrain' });
    updateStage(dir, 'finetune', { status: 'running', started: '2024-01-01T00:00:00.000Z', epochsDone: 0 });
    updateStage(dir, 'finetune', { status: 'failed', error: 'out of memory', metrics: { auc: 0.5 } });
    let m = updateStage(dir, 'finetune', { metrics: { loss: 0.3 }, epochsDone: 2 });
    expect(m.stages.finetune).toEqual({
      status: 'failed',
      started: '2024-01-01T00:00:00.000Z',
      error: 'out of memory',
      epochsDone: 2,
      metrics: { auc: 0.5, loss: 0.3 },
      pid: process.pid,
      host: os.hostname(), // who ran it (a dead 'running' stage is reaped: test/limits.test.ts)
    });
    m = updateStage(dir, 'finetune', { status: 'done', error: undefined });
    expect(m.stages.finetune).not.toHaveProperty('error');
    expect(m.stages.pretrain).toEqual({ status: 'done', metrics: { loss: 2.5 }, checkpoint: 'pretrain' });
    expect(loadRun(dir)).toEqual(m);
  });

  it('updateStage on a directory without run.json creates it', () => {
    const dir = path.join(tmp, 'fresh');
    const m = updateStage(dir, 'prune', { status: 'running' });
    expect(m.stages).toEqual({ prune: { status: 'running', pid: process.pid, host: os.hostname() } });
    expect(loadRun(dir).version).toBe(1);
  });

  it('saveRun stamps updated', () => {
    const dir = path.join(tmp, 'save');
    const m = openRun(dir);
    m.updated = '2000-01-01T00:00:00.000Z';
    saveRun(dir, m);
    expect(m.updated).not.toBe('2000-01-01T00:00:00.000Z');
    expect(loadRun(dir).updated).toBe(m.updated);
  });

  it('loadRun refuses a missing manifest, another version and a broken file', () => {
    const empty = path.join(tmp, 'empty');
    fs.mkdirSync(empty);
    expect(userError(() => loadRun(empty))).toMatch(/run\.json: not found/);

    const v2 = path.join(tmp, 'v2');
    fs.mkdirSync(v2);
    fs.writeFileSync(path.join(v2, 'run.json'), JSON.stringify({ version: 2, name: 'x', stages: {} }));
    expect(userError(() => loadRun(v2))).toMatch(/version 2 is not supported/);
    expect(userError(() => openRun(v2))).toMatch(/version 2/); // openRun does not overwrite it
    expect(JSON.parse(fs.readFileSync(path.join(v2, 'run.json'), 'utf8')).version).toBe(2);

    const broken = path.join(tmp, 'broken');
    fs.mkdirSync(broken);
    fs.writeFileSync(path.join(broken, 'run.json'), '{"version": 1,');
    expect(userError(() => loadRun(broken))).toMatch(/run\.json:1:\d+: invalid JSON/);
  });
});

describe('run paths', () => {
  it('safeRunPath: plain names go under runs/, paths are taken as given', () => {
    expect(safeRunPath('quick')).toBe(path.join('runs', 'quick'));
    expect(safeRunPath(' quick ')).toBe(path.join('runs', 'quick'));
    expect(safeRunPath('out/run1')).toBe(path.join('out', 'run1'));
    expect(safeRunPath('./r')).toBe('r');
    expect(safeRunPath('/abs/run')).toBe(path.normalize('/abs/run'));
    expect(runDir('a/b/../c')).toBe(path.normalize('a/c'));
  });

  it('safeRunPath refuses empty names and .. segments', () => {
    for (const bad of ['', '  ', '..', '../x', 'a/../../b', 'a\\..\\b', '.']) {
      expect(userError(() => safeRunPath(bad))).toMatch(/--run/);
    }
  });

  it('runFile joins inside the run dir and refuses escapes', () => {
    const dir = path.join(tmp, 'rf');
    expect(runFile(dir, 'checkpoints/finetune')).toBe(path.join(dir, 'checkpoints', 'finetune'));
    expect(runFile(dir, 'a/../b.json')).toBe(path.join(dir, 'b.json'));
    for (const bad of ['../x', 'a/../../x', '/etc/passwd', '', 'C:/x']) {
      expect(userError(() => runFile(dir, bad))).toContain('run.json');
    }
  });
});
