// The whole pipeline end to end through the CLI on a small demo dataset with the tiny preset:
// every stage recorded in run.json, the closing table, checkpoints HF can load, the prune report.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { RUN_STAGE_KEYS } from '../src/engine/stages/registry';
import { bp } from './helpers/cli';
import { runCommand } from '../src/engine/commands';
import type { EngineEvent } from '../src/engine/protocol';

describe('pipeline (tiny preset, demo data)', () => {
  it('runs every stage and prints the closing table', async () => {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), 'bp-pipe-'));
    const data = path.join(d, 'data');
    let r = await bp(['demo-data', '--out', data, '--train-rows', '400', '--test-rows', '100']);
    expect(r.code, r.stderr).toBe(0);
    const run = path.join(d, 'run');
    const r0 = await bp(['pipeline', '--data', data, '--run', run, '--preset', 'tiny', '--backend', 'wasm']);
    r = r0;
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('backend: wasm');
    // The closing table: prior, unpruned and pruned rows with the metric.
    expect(r.stdout).toMatch(/\| label prior\s+\|\s+0\.\d{4}/);
    expect(r.stdout).toMatch(/\| bert \(fine-tuned\)\s+\|\s+0\.\d{4}/);
    expect(r.stdout).toMatch(/\| bert \(pruned, re-fine-tuned\)\s+\|\s+0\.\d{4}/);
    // Time against quality: minutes and the test metric after each training stage.
    expect(r.stdout).toContain('time against quality');
    expect(r.stdout).toMatch(/\| prune \(before re-fine-tuning\)\s+\|\s+[\d.]+\s+\|\s+[\d.]+\s+\|\s+0\.\d{4}/);

    const m = JSON.parse(fs.readFileSync(path.join(run, 'run.json'), 'utf8'));
    // Every key of the registry's list (which the Runs tree orders by) is one the pipeline records.
    for (const s of RUN_STAGE_KEYS) expect(m.stages[s]?.status, s).toBe('done');
    // The pipeline is recorded as one object: the stages it runs, which a resume continues.
    expect(m.pipeline.steps).toEqual([...RUN_STAGE_KEYS]);
    expect(m.stages.finetune.checkpoint).toBe('finetune');
    for (const ck of ['pretrain', 'finetune', 'pruned', 'refinetune']) {
      for (const f of ['config.json', 'model.safetensors', 'vocab.txt'])
        expect(fs.existsSync(path.join(run, ck, f)), `${ck}/${f}`).toBe(true);
    }
    const report = JSON.parse(fs.readFileSync(path.join(run, 'pruned', 'prune-report.json'), 'utf8'));
    expect(report.after.encoder_params).toBeLessThan(report.before.encoder_params);
    expect(typeof report.metrics.after_refinetune).toBe('number');

    // evaluate --json on the pruned model agrees with what the pipeline recorded.
    r = await bp([
      'evaluate',
      '--model',
      path.join(run, 'refinetune'),
      '--data',
      path.join(run, 'data', 'test.csv'),
      '--json',
      '--backend',
      'wasm',
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).score).toBeCloseTo(m.stages['evaluate-pruned'].metrics.score, 6);

    // The pipeline wrote both models' predictions on the test file; scored, they give its metric.
    const pred = fs
      .readFileSync(path.join(run, 'predictions', 'refinetune.jsonl'), 'utf8')
      .trim()
      .split('\n');
    expect(pred).toHaveLength(100);

    // predict writes one line per row with 17 probabilities.
    const out = path.join(d, 'pred.jsonl');
    r = await bp([
      'predict',
      '--model',
      path.join(run, 'finetune'),
      '--data',
      path.join(run, 'data', 'test.csv'),
      '--out',
      out,
      '--backend',
      'wasm',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const lines = fs
      .readFileSync(out, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines).toHaveLength(100);
    expect(lines[0].probs).toHaveLength(17);
    expect(lines[0].probs.every((p: number) => p > 0 && p < 1)).toBe(true);

    // --resume on a finished run trains nothing again (prune included) and prints the same table.
    const pruneEnded = m.stages.prune.ended;
    const again = await bp([
      'pipeline',
      '--data',
      data,
      '--run',
      run,
      '--preset',
      'tiny',
      '--backend',
      'wasm',
      '--resume',
    ]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).not.toMatch(/== (pretrain|finetune|prune|refinetune)\b/);
    const pruned = (s: string) => s.split('\n').find((l) => l.startsWith('| bert (pruned'));
    expect(pruned(again.stdout)).toBe(pruned(r0.stdout));
    expect(JSON.parse(fs.readFileSync(path.join(run, 'run.json'), 'utf8')).stages.prune.ended).toBe(pruneEnded);
  }, 600_000);
});

describe('pipeline on a test file without labels (a competition test set)', () => {
  it("trains, prunes and writes both models' predictions, with no test metrics", async () => {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), 'bp-pipe-unlabeled-'));
    const data = path.join(d, 'data');
    let r = await bp(['demo-data', '--out', data, '--train-rows', '300', '--test-rows', '40']);
    expect(r.code, r.stderr).toBe(0);
    // Keep id and text only: the test rows have no label field at all.
    const testFile = path.join(data, 'test.csv');
    const unlabeled = fs
      .readFileSync(testFile, 'utf8')
      .trim()
      .split('\n')
      .map((l) => l.split('|,|').slice(0, 2).join('|,|'));
    fs.writeFileSync(testFile, unlabeled.join('\n') + '\n');
    const run = path.join(d, 'run');
    r = await bp(['pipeline', '--data', data, '--run', run, '--preset', 'tiny', '--backend', 'wasm']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('has rows without labels');
    expect(r.stdout).toMatch(/\| bert \(pruned, re-fine-tuned\)\s+\|\s+-\s+\|/);
    for (const name of ['finetune', 'refinetune']) {
      const lines = fs
        .readFileSync(path.join(run, 'predictions', `${name}.jsonl`), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      expect(lines.map((l) => l.id)).toEqual(unlabeled.map((l) => l.split('|,|')[0]));
      expect(lines.every((l) => l.probs.length === 17)).toBe(true);
    }
    const m = JSON.parse(fs.readFileSync(path.join(run, 'run.json'), 'utf8'));
    expect(m.stages.refinetune.status).toBe('done');
    expect(m.stages.evaluate).toBeUndefined();
  }, 600_000);
});

describe('pipeline: a cancel between stages', () => {
  it('stops before the next stage starts, and run.json says so', async () => {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), 'bp-pipe-cancel-'));
    const data = path.join(d, 'data');
    expect((await bp(['demo-data', '--out', data, '--train-rows', '60', '--test-rows', '20'])).code).toBe(0);
    const run = path.join(d, 'run');
    const controller = new AbortController();
    const started: string[] = [];
    // the cancel arrives as corpus-vocab ends: after its last step, before pretrain
    const emit = (e: EngineEvent) => {
      if (e.type === 'stage-start') started.push(e.stage);
      if (e.type === 'stage-end' && e.stage === 'corpus-vocab') controller.abort();
    };
    const args = ['--data', data, '--run', run, '--preset', 'tiny', '--backend', 'cpu'];
    await expect(runCommand('pipeline', args, { emit, signal: controller.signal })).rejects.toThrow(
      'pipeline cancelled before pretrain',
    );
    expect(started).not.toContain('pretrain');
    const m = JSON.parse(fs.readFileSync(path.join(run, 'run.json'), 'utf8'));
    expect(m.stages['corpus-vocab'].status).toBe('done');
    expect(m.stages.pretrain).toBeUndefined();
    // nothing of pretrain's, and the pipeline's list, which a --resume continues from pretrain
    expect(m.pipeline.steps.slice(0, 2)).toEqual(['corpus-vocab', 'pretrain']);
    expect(fs.existsSync(path.join(run, 'pretrain'))).toBe(false);
  });
});
