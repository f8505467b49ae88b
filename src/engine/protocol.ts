// The one message protocol between the engine and whoever drives it: the CLI prints these events
// (as a progress bar, or as JSON lines with --json-events), the forked engine process sends them
// to the extension over IPC. Every field is plain JSON.

/**
 * A stage's name on the wire: one of stages/registry.ts's names, which the receiving side checks
 * (isStageName). The protocol sits below every folder, so it does not import the registry.
 */
export type StageName = string;

/** Events the engine emits while a stage runs. */
export type EngineEvent =
  | { type: 'log'; level: 'info' | 'warn' | 'error'; message: string }
  | { type: 'backend'; backend: string; precision?: 'fp32' | 'mixed' }
  | { type: 'stage-start'; stage: StageName; run?: string; detail?: string }
  | {
      type: 'stage-end';
      stage: StageName;
      status: 'done' | 'failed' | 'cancelled';
      seconds: number;
      metrics?: Record<string, number>;
      error?: string;
    }
  | {
      type: 'step';
      stage: StageName;
      epoch: number;
      epochs: number;
      step: number; // step within the stage, 1-based
      steps: number; // total steps of the stage
      loss: number;
      lr: number;
      tokensPerSecond: number;
      etaSeconds: number;
      /** Mixed precision: the loss scale after the step, and whether the step was skipped (inf/NaN gradients). */
      lossScale?: number;
      skipped?: boolean;
    }
  | {
      type: 'epoch';
      stage: StageName;
      epoch: number;
      epochs: number;
      metrics: Record<string, number>; // e.g. train_loss, val_score, mlm_accuracy
    }
  | { type: 'resume'; stage: StageName; epoch: number } // a resumed stage continues after `epoch` epochs
  | { type: 'checkpoint'; stage: StageName; path: string; kind: 'best' | 'last' | 'epoch' | 'final' }
  | { type: 'params'; path: string; summary: unknown } // an analyze summary (see analyze/summary.ts)
  | { type: 'prune-report'; path: string; report: unknown } // see prune/report.ts
  | { type: 'table'; title: string; columns: string[]; rows: (string | number)[][] };

/** Requests the extension sends to the forked engine process. */
export type EngineRequest =
  | { type: 'run'; id: number; stage: StageName; args: string[] } // args exactly as the CLI takes them
  | { type: 'cancel'; id: number };

/** Replies of the forked engine process besides the event stream. */
export type EngineReply =
  | { type: 'event'; id: number; event: EngineEvent }
  | { type: 'done'; id: number; result: unknown }
  | { type: 'error'; id: number; message: string; user: boolean } // user: a UserError (bad input), no stack
  | { type: 'ready'; backend: string | null };

export type EventSink = (e: EngineEvent) => void;
