// The engine client against a real forked process (test/fixtures/ext-fake-engine.mjs) in each of
// the ways a run can end: done, user error, crash, cancel, a cancel the engine ignores, no start.
import { fork } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { EngineRun, parseEngineReply, type EngineRunOptions } from '../src/extension/engineClient';
import type { EngineEvent } from '../src/engine/protocol';

const FAKE = path.join(__dirname, 'fixtures', 'ext-fake-engine.mjs');

function start(mode: string, opts: EngineRunOptions = {}) {
  const child = fork(FAKE, [], { env: { ...process.env, FAKE_MODE: mode }, silent: true });
  const events: EngineEvent[] = [];
  const logs: string[] = [];
  const run = new EngineRun(child, 'pretrain', ['--run', 'runs/a'], {
    onEvent: (e) => events.push(e),
    onLog: (l) => logs.push(l),
    ...opts,
  });
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  return { run, events, logs, child, exited };
}

describe('EngineRun', () => {
  it('runs a stage: sends the args, streams only its own events, resolves done, kills the child', async () => {
    const { run, events, logs, exited } = start('ok');
    const o = await run.outcome;
    expect(o).toEqual({ status: 'done', result: { args: ['--run', 'runs/a'] } });
    expect(events.map((e) => e.type)).toEqual(['stage-start', 'step', 'step', 'step']);
    expect(logs.some((l) => l.includes('malformed'))).toBe(true);
    expect(run.current).toBe('finished');
    await exited; // the per-run process does not linger
  });

  it('reports a user error with its message', async () => {
    const { run } = start('user-error');
    expect(await run.outcome).toEqual({
      status: 'failed',
      message: 'cfg.prune.json: /heads: must be number',
      user: true,
    });
  });

  it('turns a crash into an outcome that carries the stderr tail', async () => {
    const { run } = start('crash');
    const o = await run.outcome;
    expect(o.status).toBe('crashed');
    expect(o.status === 'crashed' && o.message).toMatch(
      /exited with code 134 during pretrain[\s\S]*Segmentation fault/,
    );
  });

  it('crashes cleanly when the process exits before it is ready', async () => {
    const { run } = start('exit-early');
    const o = await run.outcome;
    expect(o.status === 'crashed' && o.message).toMatch(/exited with code 3/);
  });

  it('does not hang when the engine never says ready', async () => {
    const { run, exited } = start('never-ready', { readyTimeoutMs: 300 });
    const o = await run.outcome;
    expect(o.status === 'crashed' && o.message).toMatch(/did not start within 0.3 s/);
    await exited;
  });

  it('cancels through the protocol when the engine cooperates', async () => {
    const { run, events } = start('cancellable', { cancelGraceMs: 5000 });
    while (events.length === 0) await new Promise((r) => setTimeout(r, 5));
    const t0 = Date.now();
    run.cancel();
    expect(run.current).toBe('cancelling');
    expect(await run.outcome).toEqual({ status: 'cancelled' });
    expect(Date.now() - t0).toBeLessThan(2000);
  });

  it('kills an engine that ignores the cancel after the grace period', async () => {
    const { run, events, logs, exited } = start('stubborn', { cancelGraceMs: 200 });
    while (events.length === 0) await new Promise((r) => setTimeout(r, 5));
    run.cancel();
    expect(await run.outcome).toEqual({ status: 'cancelled' });
    expect(logs.some((l) => l.includes('killing it'))).toBe(true);
    await exited;
  });
});

describe('parseEngineReply', () => {
  it('accepts the four reply kinds and rejects everything else', () => {
    expect(parseEngineReply({ type: 'ready', backend: null })).toEqual({ type: 'ready', backend: null });
    expect(parseEngineReply({ type: 'done', id: 1, result: 5 })).toEqual({ type: 'done', id: 1, result: 5 });
    expect(parseEngineReply({ type: 'error', id: 2, message: 'x' })).toEqual({
      type: 'error',
      id: 2,
      message: 'x',
      user: false,
    });
    expect(parseEngineReply({ type: 'event', id: 1, event: { type: 'log', level: 'info', message: 'm' } })?.type).toBe(
      'event',
    );
    for (const bad of [
      null,
      'x',
      [],
      { type: 'done' },
      { type: 'error', id: 1 },
      { type: 'event', id: 1, event: 3 },
      { type: 'what', id: 1 },
      { type: 'ready', backend: 3 },
    ]) {
      expect(parseEngineReply(bad)).toBeUndefined();
    }
  });
});

// The real bundled engine (npm test builds dist/ first): demo data, corpus & vocab, then a tiny
// pretraining cancelled after its first step, recorded as cancelled in run.json.
const ENGINE = path.join(__dirname, '..', 'dist', 'engine.js');
describe.skipIf(!fs.existsSync(ENGINE))('EngineRun with dist/engine.js', () => {
  it('runs stages and cancels a pretraining within a step', { timeout: 60_000 }, async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ext-engine-'));
    try {
      const go = (
        stage: 'demo-data' | 'corpus-vocab' | 'pretrain',
        args: string[],
        onEvent?: (e: EngineEvent, r: EngineRun) => void,
      ) => {
        const child = fork(ENGINE, [], { cwd: tmp, silent: true });
        const run: EngineRun = new EngineRun(child, stage, args, {
          onEvent: (e) => onEvent?.(e, run),
          readyTimeoutMs: 30_000,
          cancelGraceMs: 20_000,
        });
        return run.outcome;
      };
      expect((await go('demo-data', ['--out', 'data', '--train-rows', '60', '--test-rows', '20'])).status).toBe('done');
      const run = path.join(tmp, 'runs', 'a');
      expect((await go('corpus-vocab', ['--data', 'data', '--run', run, '--preset', 'tiny'])).status).toBe('done');
      const events: string[] = [];
      const o = await go('pretrain', ['--run', run, '--preset', 'tiny'], (e, r) => {
        events.push(e.type);
        if (e.type === 'step') r.cancel();
      });
      expect(o).toEqual({ status: 'cancelled' });
      // "Within one step": the step in flight when the cancel arrives may still finish.
      expect(events.filter((t) => t === 'step').length).toBeLessThanOrEqual(2);
      const manifest = JSON.parse(fs.readFileSync(path.join(run, 'run.json'), 'utf8'));
      expect(manifest.stages['corpus-vocab'].status).toBe('done');
      expect(manifest.stages.pretrain.status).toBe('cancelled');
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
});

describe('engineEnv', () => {
  it('passes only what the engine needs', async () => {
    const { engineEnv } = await import('../src/extension/engineClient');
    const env = engineEnv({
      PATH: '/bin',
      HOME: '/h',
      NODE_OPTIONS: '--require evil.js',
      GITHUB_TOKEN: 'x',
      BERT_PRUNER_NATIVE: '0',
      CUDA_VISIBLE_DEVICES: '1',
    });
    expect(env).toEqual({
      PATH: '/bin',
      HOME: '/h',
      BERT_PRUNER_NATIVE: '0',
      CUDA_VISIBLE_DEVICES: '1',
      ELECTRON_RUN_AS_NODE: '1',
    });
  });

  it('passes bertPruner.webgpuAdapter as BERT_PRUNER_WEBGPU_ADAPTER, and nothing when it is empty', async () => {
    const { engineEnv } = await import('../src/extension/engineClient');
    const base = { PATH: '/bin' };
    expect(engineEnv(base, { webgpuAdapter: 'NVIDIA' })).toEqual({
      PATH: '/bin',
      BERT_PRUNER_WEBGPU_ADAPTER: 'NVIDIA',
      ELECTRON_RUN_AS_NODE: '1',
    });
    expect(engineEnv(base, { webgpuAdapter: ' NVIDIA H200\n' }).BERT_PRUNER_WEBGPU_ADAPTER).toBe('NVIDIA H200');
    expect(engineEnv(base, { webgpuAdapter: 'a\u0000b' }).BERT_PRUNER_WEBGPU_ADAPTER).toBe('ab');
    for (const empty of ['', '  ', undefined, 5 as unknown as string]) {
      expect('BERT_PRUNER_WEBGPU_ADAPTER' in engineEnv(base, { webgpuAdapter: empty }), String(empty)).toBe(false);
    }
    expect('BERT_PRUNER_WEBGPU_ADAPTER' in engineEnv(base)).toBe(false);
    // One from the editor's environment stays when the setting is empty; the setting replaces it.
    const inherited = { ...base, BERT_PRUNER_WEBGPU_ADAPTER: 'AMD' };
    expect(engineEnv(inherited, { webgpuAdapter: '' }).BERT_PRUNER_WEBGPU_ADAPTER).toBe('AMD');
    expect(engineEnv(inherited, { webgpuAdapter: 'NVIDIA' }).BERT_PRUNER_WEBGPU_ADAPTER).toBe('NVIDIA');
  });
});
