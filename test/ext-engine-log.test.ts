// The levels the "BERT Pruner" log channel writes engine events and raw engine output at.
import { describe, expect, it } from 'vitest';
import { engineEventLog, outcomeLevel, rawLineLevel, writeLog, type LevelLog } from '../src/extension/engineLog';

describe('engine events in the log channel', () => {
  it('logs log events at their own level and stage ends by status', () => {
    expect(engineEventLog({ type: 'log', level: 'warn', message: 'w' })).toEqual({ level: 'warn', text: 'w' });
    expect(engineEventLog({ type: 'log', level: 'error', message: 'e' })).toEqual({ level: 'error', text: 'e' });
    expect(engineEventLog({ type: 'log', level: 'info', message: 'i' })).toEqual({ level: 'info', text: 'i' });
    const end = (status: 'done' | 'failed' | 'cancelled') => {
      const error = status === 'failed' ? 'boom' : undefined;
      return engineEventLog({ type: 'stage-end', stage: 'prune', status, seconds: 3, error });
    };
    expect(end('done')?.level).toBe('info');
    expect(end('cancelled')?.level).toBe('warn');
    expect(end('failed')).toMatchObject({ level: 'error' });
    expect(end('failed')?.text).toMatch(/^--- prune failed in .*: boom$/);
  });

  it('writes epochs, checkpoints, backend and tables at info, and no line per step', () => {
    expect(
      engineEventLog({ type: 'epoch', stage: 'finetune', epoch: 2, epochs: 6, metrics: { val_score: 0.91234 } }),
    ).toEqual({ level: 'info', text: 'finetune epoch 2/6: val_score=0.9123' });
    expect(engineEventLog({ type: 'backend', backend: 'wasm' })).toEqual({ level: 'info', text: 'backend: wasm' });
    expect(engineEventLog({ type: 'table', title: 'T', columns: ['a'], rows: [[1]] })?.level).toBe('info');
    const step = {
      type: 'step',
      stage: 'pretrain',
      epoch: 1,
      epochs: 1,
      step: 1,
      steps: 9,
      loss: 1,
      lr: 1,
      tokensPerSecond: 1,
      etaSeconds: 1,
    } as const;
    expect(engineEventLog(step)).toBeUndefined();
  });

  it('raw stdout is trace, stderr and client notes info; run outcomes by status', () => {
    expect([rawLineLevel('stdout'), rawLineLevel('stderr'), rawLineLevel('client')]).toEqual(['trace', 'info', 'info']);
    expect(['done', 'cancelled', 'failed', 'crashed'].map(outcomeLevel)).toEqual(['info', 'warn', 'error', 'error']);
    const seen: string[] = [];
    const log: LevelLog = {
      trace: (m) => seen.push(`t ${m}`),
      info: (m) => seen.push(`i ${m}`),
      warn: (m) => seen.push(`w ${m}`),
      error: (m) => seen.push(`e ${m}`),
    };
    writeLog(log, { level: 'warn', text: 'x' });
    writeLog(log, undefined);
    expect(seen).toEqual(['w x']);
  });
});
