// The flow between the stages (pure): what Resume continues (a pipeline as a whole), the next step
// each finished stage offers (in its notification and on its Runs tree row), which checkpoints a
// picker may offer, when Cancel asks first, and the loading snippet of a checkpoint.
import * as path from 'node:path';
import { isStageName, REGISTRY, type StageName } from '../engine/stages/registry';
import { isResumable, pipelineLeft, pipelineResumable, stageOfKey, type RunView } from './runModel';

// ---- resume ------------------------------------------------------------------------------------

export interface ResumeChoice {
  run: RunView;
  /** 'pipeline' continues every stage the pipeline has left; another stage resumes alone. */
  stage: StageName;
  label: string;
  detail: string;
}

/**
 * What Resume offers: a run whose pipeline stopped is one choice, the whole pipeline (never one of
 * its stages: resuming only that one would silently drop the rest); a stage run on its own that
 * was cancelled or failed is resumed alone.
 */
export function resumeChoices(runs: RunView[]): ResumeChoice[] {
  const out: ResumeChoice[] = [];
  for (const run of runs) {
    if (pipelineResumable(run)) {
      const left = pipelineLeft(run);
      const stopped = run.stages.find((s) => s.status === 'cancelled' || s.status === 'failed');
      out.push({
        run,
        stage: 'pipeline',
        label: `${run.name}: the pipeline`,
        detail:
          `${left.length} stage${left.length === 1 ? '' : 's'} left: ${left.join(', ')}` +
          (stopped ? ` (${stopped.key} ${stopped.status})` : ''),
      });
      continue;
    }
    for (const s of run.stages.filter(isResumable))
      out.push({ run, stage: stageOfKey(s.key) as StageName, label: `${run.name}: ${s.key}`, detail: s.status });
  }
  return out;
}

/** What Resume on a tree node continues: the pipeline of a pipeline run, else the node's own stage. */
export function resumeTarget(run: RunView, stageKey?: string): StageName | undefined {
  if (pipelineResumable(run)) return 'pipeline';
  if (!stageKey) return undefined;
  const stage = stageOfKey(stageKey);
  return isStageName(stage) && REGISTRY[stage].resumable ? stage : undefined;
}

// ---- the next step ------------------------------------------------------------------------------

export interface NextStep {
  /** The button's and the tree action's title. */
  title: string;
  /** The command it runs (bertPruner.<id>), given the checkpoint the stage made. */
  command: string;
}

/**
 * Where the chain goes after a stage's checkpoint: Fine-tune -> Prune (a pruning config opened for
 * editing first, never run unasked) -> Re-fine-tune -> Evaluate -> ship it.
 */
const NEXT: Record<string, NextStep[]> = {
  pretrain: [{ title: 'Fine-tune', command: 'nextFinetune' }],
  finetune: [{ title: 'Prune…', command: 'nextPrune' }],
  prune: [{ title: 'Re-fine-tune', command: 'nextRefinetune' }],
  refinetune: [{ title: 'Evaluate', command: 'nextEvaluate' }],
};

/** The last step, shipping the model: the ONNX export (fp32 or int8), or the checkpoint as it is. */
export const EXPORT_STEP: NextStep[] = [
  { title: 'Export to ONNX', command: 'exportOnnx' },
  { title: 'Reveal Checkpoint', command: 'revealCheckpoint' },
  { title: 'Copy Loading Snippet', command: 'copyLoadingSnippet' },
];

/**
 * The next steps a finished stage offers. `key` is its run.json key (or the stage's name when it
 * ran outside a run); an evaluation of a re-fine-tuned (pruned) model leads to shipping it.
 */
export function nextSteps(key: string): NextStep[] {
  if (NEXT[key]) return NEXT[key];
  if (key === 'evaluate-pruned' || key === 'evaluate') return EXPORT_STEP;
  return [];
}

// ---- the palette ----------------------------------------------------------------------------------

/** The stages numbered in the order they run, so the palette lists them in that order. */
const STAGE_ORDER: Partial<Record<StageName, number>> = {
  'corpus-vocab': 1,
  pretrain: 2,
  finetune: 3,
  prune: 4,
  refinetune: 5,
  evaluate: 6,
};

/** A stage command's title in the palette (package.json): "3. Fine-tune"; the registry's title elsewhere. */
export function paletteTitle(stage: StageName): string {
  const n = STAGE_ORDER[stage];
  return n ? `${n}. ${REGISTRY[stage].title}` : REGISTRY[stage].title;
}

// ---- pickers -------------------------------------------------------------------------------------

/** What a checkpoint picker asks for: an unpruned model (fine-tune's teacher, prune's input) or a pruned one. */
export type CheckpointKind = 'any' | 'unpruned' | 'pruned';

const PRUNED_KEYS = new Set(['prune', 'refinetune']);

/** A run's finished checkpoints of a kind, newest stage first: a running or failed stage's is never offered. */
export function checkpointChoices(run: RunView, kind: CheckpointKind): { stage: string; dir: string }[] {
  const out: { stage: string; dir: string }[] = [];
  for (const s of [...run.stages].reverse()) {
    if (s.status !== 'done' || !s.checkpoint || out.some((c) => c.dir === s.checkpoint)) continue;
    const pruned = PRUNED_KEYS.has(s.key);
    if (kind === 'pruned' && !pruned) continue;
    if (kind === 'unpruned' && pruned) continue;
    out.push({ stage: s.key, dir: s.checkpoint });
  }
  return out;
}

/** The checkpoint kind a stage's model option takes (re-fine-tune: a pruned one; its teacher: unpruned). */
export function checkpointKind(stage: StageName, flag: string): CheckpointKind {
  if (stage === 'refinetune') return flag === 'teacher' ? 'unpruned' : 'pruned';
  if (stage === 'prune' || stage === 'prune-sweep') return 'unpruned';
  return 'any';
}

/** A picker's title in plain words, never a CLI flag. */
export function askTitle(stage: StageName, flag: string): string {
  const t = REGISTRY[stage].title;
  const titles: Record<string, string> = {
    from: `${t}: start from which model?`,
    teacher: `${t}: which unpruned model teaches the pruned one (distillation)?`,
    model:
      stage === 'refinetune'
        ? `${t}: which pruned model?`
        : stage === 'prune' || stage === 'prune-sweep'
          ? `${t}: which fine-tuned model?`
          : `${t}: which model?`,
    config: `${t}: a settings file?`,
  };
  return titles[flag] ?? `${t}: ${flag.replace(/-/g, ' ')}?`;
}

// ---- cancel, status bar ----------------------------------------------------------------------------

/** Cancel asks first once a stage has run for longer than this: a minute of work is worth a click. */
export const CONFIRM_CANCEL_AFTER_MS = 60_000;

export function cancelNeedsConfirm(startedMs: number, nowMs: number): boolean {
  return nowMs - startedMs > CONFIRM_CANCEL_AFTER_MS;
}

/**
 * The status bar's text for a run in flight, every number labelled: `run2 · prune 4/5 · 40%` (the
 * run, the stage and its place among the pipeline's stages, the stage's own share done).
 */
export function statusLabel(o: { target: string; stage: string; steps?: readonly string[]; percent?: number }): string {
  const i = o.steps ? o.steps.indexOf(o.stage) : -1;
  const place = i >= 0 && o.steps ? ` ${i + 1}/${o.steps.length}` : '';
  const pct = o.percent !== undefined ? ` · ${Math.floor(o.percent)}%` : '';
  return `${o.target ? `${o.target} · ` : ''}${o.stage}${place}${pct}`;
}

// ---- shipping --------------------------------------------------------------------------------------

/** A Python snippet that loads a checkpoint with Hugging Face transformers (its folder is a HF folder). */
export function loadingSnippet(dir: string): string {
  const p = JSON.stringify(dir.split(path.sep).join('/'));
  return [
    'from transformers import AutoTokenizer, BertForSequenceClassification',
    '',
    `model = BertForSequenceClassification.from_pretrained(${p})`,
    `tokenizer = AutoTokenizer.from_pretrained(${p})`,
    '',
  ].join('\n');
}
