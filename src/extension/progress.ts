// Text for the progress notification, the status bar and the log, from engine events (pure).
import type { EngineEvent } from '../engine/protocol';
import { shortBackendLabel } from './backends';
import { formatSeconds } from './runModel';

/** The notification text and percent for an event, if it changes the progress. */
export function describeProgress(e: EngineEvent): { message: string; percent?: number } | undefined {
  if (e.type === 'stage-start') return { message: `${e.stage}${e.detail ? `: ${e.detail}` : ''}`, percent: 0 };
  if (e.type === 'step') {
    const percent = e.steps > 0 ? Math.min(100, (100 * e.step) / e.steps) : undefined;
    const eta = e.etaSeconds > 0 ? ` · ETA ${formatSeconds(e.etaSeconds)}` : '';
    return {
      message: `${e.stage} epoch ${e.epoch}/${e.epochs} · step ${e.step}/${e.steps} · loss ${e.loss.toFixed(4)}${eta}`,
      percent,
    };
  }
  if (e.type === 'stage-end') return { message: `${e.stage} ${e.status}`, percent: 100 };
  return undefined;
}

/**
 * A multi-stage command's overall share (0..100) from the stage now running and its own percent:
 * each of `steps` counts as an equal part (the pipeline's corpus step is short, its training steps
 * long: an equal share per stage is the honest measure the events allow). Undefined for a
 * single-stage command or a stage outside `steps`.
 */
export function overallPercent(
  steps: readonly string[] | undefined,
  stage: string | undefined,
  percent: number,
): number | undefined {
  if (!steps?.length || !stage) return undefined;
  const i = steps.indexOf(stage);
  if (i < 0) return undefined;
  return (100 * (i + Math.min(100, Math.max(0, percent)) / 100)) / steps.length;
}

export function shortProgress(p: string): string {
  const m = /step (\d+)\/(\d+)/.exec(p);
  return m ? `${Math.floor((100 * Number(m[1])) / Number(m[2]))}%` : p.split(' · ')[0];
}

/** A run in flight, as the status bar shows it. */
export interface StatusRun {
  stage: string;
  title: string;
  progress: string;
  /** A multi-stage command's overall percent, when known. */
  overall?: number;
  /** The engine's backend label, e.g. `webgpu (NVIDIA H200)`. */
  backend?: string;
  /** The precision it runs in: mixed shows beside the backend, either in the tooltip. */
  precision?: 'fp32' | 'mixed';
  /** Labelled text (workflow.ts statusLabel), e.g. `run2 · prune 4/5 · 40%`. */
  label?: string;
}

/**
 * The status bar item for the runs in flight (at least one): the first run's stage, share and
 * backend (and `mixed` after it in mixed precision), the label shortened (`webgpu: NVIDIA H200`,
 * at most 30 characters) since a long adapter name would push the rest of the status bar aside;
 * every run and its full backend label (and precision) in the tooltip.
 */
export function statusBarText(runs: readonly StatusRun[]): { text: string; tooltip: string } {
  const first = runs[0];
  const share = first.overall !== undefined ? `${Math.floor(first.overall)}% · ` : '';
  const more = runs.length > 1 ? ` (+${runs.length - 1})` : '';
  const mixed = first.precision === 'mixed' ? ' · mixed' : '';
  const backend = first.backend ? ` · ${shortBackendLabel(first.backend)}${mixed}` : '';
  const precision = (a: StatusRun) => (a.precision ? `, precision ${a.precision}` : '');
  const lines = runs.map(
    (a) => `${a.title}: ${a.progress}${a.backend ? `\nbackend: ${a.backend}${precision(a)}` : ''}`,
  );
  const text = first.label
    ? `$(sync~spin) ${first.label}${more}${backend}`
    : `$(sync~spin) ${first.stage}${more}: ${share}${shortProgress(first.progress)}${backend}`;
  const overall = first.overall !== undefined ? [`pipeline: ${Math.floor(first.overall)}% of all its stages`] : [];
  return {
    text,
    tooltip: [...lines, ...overall, "Click to show the log; Cancel is in the Runs view's title bar."].join('\n'),
  };
}

export function quote(a: string): string {
  return /^[\w./:=@-]+$/.test(a) ? a : JSON.stringify(a);
}

export function formatTable(title: string, columns: string[], rows: (string | number)[][]): string {
  const cells = [
    columns,
    ...rows.map((r) =>
      r.map((c) => (typeof c === 'number' ? (Number.isInteger(c) ? String(c) : c.toPrecision(4)) : c)),
    ),
  ];
  const widths = columns.map((_, i) => Math.max(...cells.map((r) => String(r[i] ?? '').length)));
  const line = (r: (string | number)[]) =>
    r
      .map((c, i) => String(c ?? '').padEnd(widths[i]))
      .join('  ')
      .trimEnd();
  return [title, line(cells[0]), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.slice(1).map(line)].join('\n');
}

/** A failed stage's message that names --force as the way past a refusal, for a run not already forced. */
export function offersForce(message: string, args: readonly string[]): boolean {
  return /pass --force|--force to replace/.test(message) && !args.includes('--force');
}
