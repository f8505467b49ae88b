// The run's training history: `<run dir>/history.jsonl`, one JSON object a line, appended as the
// stages go (never rewritten), so the extension's Training Curves panel can draw any run later.
//
// Lines (every line has `type`, `stage` and `time`, an ISO-8601 time):
//   {"type":"stage-start","stage":"finetune","key":"finetune","time":...}
//   {"type":"step","stage":"finetune","epoch":1,"step":12,"steps":40,"loss":0.51,"lr":0.00099,"tps":1234,"time":...}
//       step: 1-based step within the stage (a resumed stage continues the count); tps: tokens/s.
//       In mixed precision also "scale" (the loss scale after the step) and, on a step whose
//       gradients overflowed and whose update was skipped, "skipped":true (the epoch's metrics
//       count them: skipped_steps).
//   {"type":"epoch","stage":"finetune","epoch":1,"epochs":3,"metrics":{"train_loss":...,"val_score":...},"time":...}
//   {"type":"resume","stage":"finetune","epoch":1,"time":...}
//       a resumed stage continues after `epoch` completed epochs (steps of a later epoch before this
//       line belong to the interrupted attempt).
//   {"type":"stage-end","stage":"finetune","key":"finetune","status":"done","seconds":31.2,"metrics":{...},"time":...}
//       status 'done' | 'failed' | 'cancelled'; `error` when it failed.
// `stage` is the engine stage of the event (gradual pruning's recovery epochs are stage 'prune');
// `key` is the run.json stage key of the stage-start/-end pair ('evaluate-pruned').
//
// Every step is written (a line is ~170 bytes; a step takes far longer than the append). Numbers
// are rounded to 6 significant digits to keep lines small. Each line is one appendFileSync call; a
// torn last line (kill -9, disk full) is ended before the next append, and readers skip lines they
// cannot parse. Writing history never fails a stage: the first failure is logged, later ones not.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { EngineEvent, StageName } from '../protocol';
import { readTail } from './read';

export const HISTORY_FILE = 'history.jsonl';

export type HistoryLine =
  | { type: 'stage-start'; stage: StageName; key: string; time: string }
  | {
      type: 'stage-end';
      stage: StageName;
      key: string;
      status: string;
      seconds: number;
      metrics?: Record<string, number>;
      error?: string;
      time: string;
    }
  | {
      type: 'step';
      stage: StageName;
      epoch: number;
      step: number;
      steps: number;
      loss: number;
      lr: number;
      tps: number;
      /** Mixed precision: the loss scale after the step; skipped: its update was skipped (inf/NaN gradients). */
      scale?: number;
      skipped?: true;
      time: string;
    }
  | { type: 'epoch'; stage: StageName; epoch: number; epochs: number; metrics: Record<string, number>; time: string }
  | { type: 'resume'; stage: StageName; epoch: number; time: string };

const round = (x: number) => (Number.isFinite(x) ? Number(x.toPrecision(6)) : null);

function roundAll(m: Record<string, number> | undefined): Record<string, number> | undefined {
  if (!m) return undefined;
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(m)) out[k] = round(v) as number;
  return out;
}

/** The history line of a training event (step, epoch, resume); undefined for the others. */
export function historyLine(e: EngineEvent, time = new Date()): HistoryLine | undefined {
  const t = time.toISOString();
  switch (e.type) {
    case 'step':
      return {
        type: 'step',
        stage: e.stage,
        epoch: e.epoch,
        step: e.step,
        steps: e.steps,
        loss: round(e.loss) as number,
        lr: round(e.lr) as number,
        tps: Math.round(e.tokensPerSecond),
        ...(e.lossScale !== undefined ? { scale: e.lossScale } : {}),
        ...(e.skipped ? { skipped: true as const } : {}),
        time: t,
      };
    case 'epoch':
      return {
        type: 'epoch',
        stage: e.stage,
        epoch: e.epoch,
        epochs: e.epochs,
        metrics: roundAll(e.metrics)!,
        time: t,
      };
    case 'resume':
      return { type: 'resume', stage: e.stage, epoch: e.epoch, time: t };
    default:
      return undefined;
  }
}

/** Appends lines to one run's history.jsonl; never throws. */
export class HistoryWriter {
  readonly file: string;
  private failed = false;
  private needsNewline: boolean;

  constructor(
    runDir: string,
    private readonly warn: (message: string) => void,
  ) {
    this.file = path.join(runDir, HISTORY_FILE);
    this.needsNewline = endsTorn(this.file);
  }

  write(line: HistoryLine | undefined): void {
    if (!line) return;
    try {
      fs.appendFileSync(this.file, `${this.needsNewline ? '\n' : ''}${JSON.stringify(line)}\n`);
      this.needsNewline = false;
    } catch (e) {
      // A failed append may have left part of a line: end it before the next one.
      this.needsNewline = true;
      const why = (e as Error).message;
      if (!this.failed) this.warn(`${this.file}: cannot append the training history (${why}); the stage goes on`);
      this.failed = true;
    }
  }
}

/** Whether the file exists and its last byte is not a newline (a torn last line). */
function endsTorn(file: string): boolean {
  try {
    const { buf } = readTail(file, 'history', 1);
    return buf.length > 0 && buf[0] !== 0x0a;
  } catch {
    return false;
  }
}
