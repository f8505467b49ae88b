// runs/RUN/history.jsonl: the stages append their step and epoch events (and stage-start/-end,
// resume) through the CLI, the same engine code the extension forks; writing it never fails a stage.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { HISTORY_FILE, historyLine, HistoryWriter } from '../src/engine/io/history';
import { parseHistory } from '../src/extension/panelData/training';
import { bp, TINY } from './robust-helpers';

const roots: string[] = [];
afterAll(() => roots.forEach((r) => fs.rmSync(r, { recursive: true, force: true })));
const tmp = () => {
  const r = fs.mkdtempSync(path.join(os.tmpdir(), 'bp-history-'));
  roots.push(r);
  return r;
};

describe('HistoryWriter', () => {
  it('appends one small line per event and ends a torn last line first', () => {
    const dir = tmp();
    fs.writeFileSync(path.join(dir, HISTORY_FILE), '{"type":"step","stage":"fine'); // killed mid-line
    const w = new HistoryWriter(dir, () => {
      throw new Error('no warning expected');
    });
    const e = {
      type: 'step',
      stage: 'finetune',
      epoch: 1,
      epochs: 2,
      step: 3,
      steps: 8,
      loss: 0.123456789,
      lr: 1e-3 / 3,
      tokensPerSecond: 1234.56,
      etaSeconds: 9,
    } as const;
    w.write(historyLine(e, new Date(0)));
    w.write(historyLine({ type: 'log', level: 'info', message: 'not history' }));
    const lines = fs.readFileSync(path.join(dir, HISTORY_FILE), 'utf8').split('\n');
    expect(lines).toHaveLength(3);
    expect(JSON.parse(lines[1])).toEqual({
      type: 'step',
      stage: 'finetune',
      epoch: 1,
      step: 3,
      steps: 8,
      loss: 0.123457,
      lr: 0.000333333,
      tps: 1235,
      time: '1970-01-01T00:00:00.000Z',
    });
    expect(lines[1].length).toBeLessThan(200);
    expect(lines[2]).toBe('');
    expect(parseHistory(lines.join('\n')).records).toHaveLength(1); // the torn line is skipped
  });

  it('never throws: a failure is reported once and the stage goes on', () => {
    const dir = tmp();
    fs.mkdirSync(path.join(dir, HISTORY_FILE)); // a directory where the file should be
    const warnings: string[] = [];
    const w = new HistoryWriter(dir, (m) => warnings.push(m));
    for (let i = 0; i < 3; i++) w.write(historyLine({ type: 'resume', stage: 'pretrain', epoch: 1 }));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/history\.jsonl: cannot append the training history/);
  });
});

describe('history.jsonl through the CLI', () => {
  it('has the stage lines, a line per step and per epoch, and a resume marker when resumed', async () => {
    const root = tmp();
    const run = path.join(root, 'run');
    const conf = (name: string, s: unknown) => {
      fs.writeFileSync(path.join(root, name), JSON.stringify(s));
      return path.join(root, name);
    };
    const one = conf('one.json', { pretrain: { epochs: 1 }, finetune: { epochs: 1 } });
    for (const a of [
      ['demo-data', '--out', path.join(root, 'data'), '--train-rows', '120', '--test-rows', '20'],
      ['corpus-vocab', '--data', path.join(root, 'data'), '--run', run, ...TINY, '--config', one],
      ['pretrain', '--run', run, ...TINY, '--config', one],
      ['finetune', '--run', run, ...TINY, '--config', one],
      ['finetune', '--run', run, ...TINY, '--config', conf('two.json', { finetune: { epochs: 2 } }), '--resume'],
    ]) {
      const r = await bp(a);
      expect(r.code, r.stderr).toBe(0);
    }
    const text = fs.readFileSync(path.join(run, HISTORY_FILE), 'utf8');
    expect(text.endsWith('\n')).toBe(true);
    expect(parseHistory(text).skipped).toBe(0);
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const records: any[] = text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    for (const r of records) expect(Number.isNaN(Date.parse(r.time)), JSON.stringify(r)).toBe(false);
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const of = (stage: string, type: string) => records.filter((r: any) => r.stage === stage && r.type === type);
    expect(of('corpus-vocab', 'stage-start')).toHaveLength(1);
    expect(of('corpus-vocab', 'stage-end')[0]).toMatchObject({ status: 'done' });

    for (const stage of ['pretrain', 'finetune']) {
      const steps = of(stage, 'step');
      expect(steps.length, stage).toBeGreaterThan(1);
      const numbers = { loss: expect.any(Number), lr: expect.any(Number), tps: expect.any(Number) };
      for (const s of steps) expect(s).toMatchObject(numbers);
      expect(of(stage, 'epoch')[0]).toMatchObject({
        epoch: 1,
        metrics: expect.objectContaining({ train_loss: expect.any(Number) }),
      });
    }
    expect(of('pretrain', 'stage-end')[0]).toMatchObject({ status: 'done', seconds: expect.any(Number) });

    // The second fine-tuning resumed after epoch 1: its lines follow a resume marker.
    const ft = records.filter((r) => r.stage === 'finetune');
    expect(ft.map((r) => r.type).filter((t: string) => t !== 'step')).toEqual([
      'stage-start',
      'epoch',
      'stage-end',
      'stage-start',
      'resume',
      'epoch',
      'stage-end',
    ]);
    expect(of('finetune', 'resume')[0]).toMatchObject({ epoch: 1 });
    expect(of('finetune', 'epoch').map((r) => r.epoch)).toEqual([1, 2]);
    expect(parseHistory(text).records.filter((r) => r.type === 'step').length).toBe(
      records.filter((r) => r.type === 'step').length,
    );
    const resumeAt = ft.findIndex((r) => r.type === 'resume');
    const after = ft.slice(resumeAt).filter((r) => r.type === 'step');
    expect(after.length).toBeGreaterThan(0);
    expect(after.every((r) => r.epoch === 2)).toBe(true);
  }, 240_000);
});
