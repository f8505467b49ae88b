// The stage layer's bookkeeping: a stage's settings, and recordStage, which records a stage's start,
// end and history in its run. The context every function receives is ../context.ts.
import * as path from 'node:path';
import type { Settings } from '../config/settings';
import { deepMerge, resolveSettings } from '../config/settings';
import { loadConfigFile } from '../config/validate';
import { loadRun, openRun, RunManifest, updateStage } from '../io/run';
import type { EventSink, StageName } from '../protocol';
import type { StageContext } from '../context';
import type { RunStageKey } from './registry';
import { explainSystemError } from '../errors';
import { historyLine, HistoryWriter } from '../io/history';

/** Emit functions that already append to a history.jsonl (a stage run inside another stage). */
const recording = new WeakSet<EventSink>();

export { log, type StageContext } from '../context';

/**
 * The settings of a stage: the run's recorded settings (or the preset's), then --config overrides.
 * An explicit --preset replaces the run's recorded settings as the base.
 */
export function stageSettings(
  runDir: string | null,
  preset: string | undefined,
  configFile: string | undefined,
): { settings: Settings; preset: string } {
  let base: { preset: string; settings?: unknown } = { preset: preset ?? 'quick' };
  if (runDir && !preset) {
    try {
      const m = loadRun(runDir);
      base = { preset: m.preset ?? 'quick', settings: m.settings };
    } catch {
      // no run yet: the default preset
    }
  }
  const override = configFile ? loadConfigFile('settings', configFile) : {};
  // A problem across keys (config/settings.ts) names the file that was given.
  const source = configFile ? `--config ${configFile}` : '--config';
  const settings = resolveSettings(base.preset, deepMerge(base.settings ?? {}, override), source);
  return { settings, preset: base.preset };
}

/**
 * Run a stage's work `fn` with its bookkeeping: stage-start/-end events and the run.json record
 * under `key` (default: the stage's name; running, then done / failed / cancelled with timings, and
 * the settings section it ran with). The stage returns its metrics and checkpoint.
 * With a run dir, its step, epoch and resume events and a stage-start/-end pair are appended to
 * the run's history.jsonl (io/history.ts): ctx.emit is wrapped while the stage runs.
 */
export async function recordStage<T extends { metrics?: Record<string, number>; checkpoint?: string; report?: string }>(
  ctx: StageContext,
  runDir: string | null,
  stage: StageName,
  fn: () => Promise<T>,
  o: { key?: RunStageKey; settings?: unknown } = {},
): Promise<T> {
  const key = o.key ?? stage;
  const settings = o.settings;
  const t0 = Date.now();
  ctx.emit({ type: 'stage-start', stage, run: runDir ?? undefined });
  if (runDir)
    updateStage(runDir, key, {
      status: 'running',
      started: new Date().toISOString(),
      backend: ctx.backend,
      precision: ctx.precision ?? 'fp32',
      settings,
      error: undefined,
    });
  const emit = ctx.emit;
  const history = runDir ? new HistoryWriter(runDir, (message) => emit({ type: 'log', level: 'warn', message })) : null;
  history?.write({ type: 'stage-start', stage, key, time: new Date().toISOString() });
  if (history && !recording.has(emit)) {
    // The line first, then the event: whoever gets the event finds it in the file already.
    ctx.emit = (e) => {
      history.write(historyLine(e));
      emit(e);
    };
    recording.add(ctx.emit);
  }
  const end = (status: string, seconds: number, metrics?: Record<string, number>, error?: string) => {
    ctx.emit = emit;
    history?.write({ type: 'stage-end', stage, key, status, seconds, metrics, error, time: new Date().toISOString() });
  };
  try {
    const result = await fn();
    const seconds = (Date.now() - t0) / 1000;
    if (runDir) {
      updateStage(runDir, key, {
        status: 'done',
        ended: new Date().toISOString(),
        seconds,
        metrics: result.metrics,
        checkpoint: result.checkpoint ? path.relative(runDir, result.checkpoint) : undefined,
        report: result.report ? path.relative(runDir, result.report) : undefined,
      });
    }
    end('done', seconds, result.metrics);
    ctx.emit({ type: 'stage-end', stage, status: 'done', seconds, metrics: result.metrics });
    return result;
  } catch (err) {
    const e = explainSystemError(err);
    const seconds = (Date.now() - t0) / 1000;
    const cancelled = e instanceof Error && e.name === 'CancelledError';
    const status = cancelled ? 'cancelled' : 'failed';
    const error = e instanceof Error ? e.message : String(e);
    try {
      if (runDir) updateStage(runDir, key, { status, ended: new Date().toISOString(), seconds, error });
    } catch {
      // The run folder itself may be what failed (disk full, read-only); the stage's own error is
      // the one the user needs, and run.json keeps its last good state.
    }
    end(status, seconds, undefined, error);
    ctx.emit({ type: 'stage-end', stage, status, seconds, error });
    throw e;
  }
}

export function ensureRun(runDir: string, init: Partial<RunManifest>): RunManifest {
  return openRun(runDir, init);
}
