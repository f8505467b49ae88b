// What goes into the "BERT Pruner" output channel, and at which level. The channel is a
// LogOutputChannel (timestamps, levels, the user's log-level filter), so each line is written with
// the level that fits it, and this module, which needs no VS Code, decides which:
// - engine events: a log event at its own level (info, warn, error); a stage that failed at error
//   and one that was cancelled at warn; everything else that is worth a line (stage start, epochs,
//   checkpoints, backend, tables) at info; per-step progress not at all (the notification shows it).
// - raw output of the engine process: its stdout at trace (the engine reports through events; what
//   reaches stdout is library chatter), its stderr at info (warnings and crash traces belong in the
//   default view), and the client's own notes (engine ready, killed after a cancel) at info.
import type { EngineEvent } from '../engine/protocol';
import { formatTable } from './progress';
import { formatSeconds } from './runModel';

export type LogLevel = 'trace' | 'info' | 'warn' | 'error';
export type RawSource = 'stdout' | 'stderr' | 'client';

export interface LogEntry {
  level: LogLevel;
  text: string;
}

/** The line (and level) an engine event is logged with; undefined for events that get none. */
export function engineEventLog(event: EngineEvent): LogEntry | undefined {
  switch (event.type) {
    case 'log':
      return { level: event.level, text: event.message };
    case 'stage-start':
      return { level: 'info', text: `--- ${event.stage}${event.detail ? `: ${event.detail}` : ''}` };
    case 'stage-end': {
      const level = event.status === 'failed' ? 'error' : event.status === 'cancelled' ? 'warn' : 'info';
      const error = event.error ? `: ${event.error}` : '';
      return { level, text: `--- ${event.stage} ${event.status} in ${formatSeconds(event.seconds)}${error}` };
    }
    case 'epoch': {
      const metrics = Object.entries(event.metrics)
        .map(([k, v]) => `${k}=${v.toPrecision(4)}`)
        .join(' ');
      return { level: 'info', text: `${event.stage} epoch ${event.epoch}/${event.epochs}: ${metrics}` };
    }
    case 'checkpoint':
      return { level: 'info', text: `${event.stage}: ${event.kind} checkpoint ${event.path}` };
    case 'backend':
      return {
        level: 'info',
        text: `backend: ${event.backend}${event.precision === 'mixed' ? ', precision mixed' : ''}`,
      };
    case 'table':
      return { level: 'info', text: formatTable(event.title, event.columns, event.rows) };
    default:
      return undefined;
  }
}

/** The level of a raw line from the engine process (or the client's own note about it). */
export function rawLineLevel(source: RawSource): LogLevel {
  return source === 'stdout' ? 'trace' : 'info';
}

/** The level of the line that ends a run in the log. */
export function outcomeLevel(status: string): LogLevel {
  return status === 'done' ? 'info' : status === 'cancelled' ? 'warn' : 'error';
}

/** The part of vscode.LogOutputChannel this module's entries are written to. */
export interface LevelLog {
  trace(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

export function writeLog(log: LevelLog, entry: LogEntry | undefined): void {
  if (entry) log[entry.level](entry.text);
}
