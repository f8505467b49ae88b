// What every stage and library function receives: where to send events, how to learn of a cancel,
// and the backend's label. The CLI and the forked engine process build it; nothing prints.
// It sits below every library folder (docs/architecture.md): train, data, prune and analyze log
// through it without knowing the stage layer.
import type { EventSink } from './protocol';

export interface StageContext {
  emit: EventSink;
  signal?: AbortSignal;
  backend: string;
  /** The precision the stage runs in (fp32 where absent; mixed: webgpu only, see backend/index.ts). */
  precision?: 'fp32' | 'mixed';
}

export function log(ctx: StageContext, message: string, level: 'info' | 'warn' | 'error' = 'info'): void {
  ctx.emit({ type: 'log', level, message });
}
