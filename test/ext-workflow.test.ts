// The flow between stages (workflow.ts, runModel.ts): a stopped pipeline resumes whole and its
// remaining stages show as pending; each finished stage offers the next step; pickers offer only
// finished checkpoints of the right kind; the status bar's text labels its numbers; Cancel asks
// after a minute.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from '../src/engine/commands';
import { REGISTRY, RUN_STAGE_KEYS } from '../src/engine/stages/registry';
import {
  pipelineLeft,
  pipelineResumable,
  runView,
  stageCheckpoint,
  stagesShown,
  stageDescription,
} from '../src/extension/runModel';
import { resumeArgs } from '../src/extension/stageArgs';
import {
  askTitle,
  cancelNeedsConfirm,
  checkpointChoices,
  checkpointKind,
  EXPORT_STEP,
  loadingSnippet,
  nextSteps,
  resumeChoices,
  resumeTarget,
  statusLabel,
} from '../src/extension/workflow';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ext-flow-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** A pipeline run cancelled during pretraining, as run.json records it. */
const cancelled = (dir = '/ws/runs/run2') =>
  runView(dir, {
    version: 1,
    name: 'run2',
    data: { dir: 'data/demo' },
    pipeline: { steps: [...RUN_STAGE_KEYS], started: '2026-01-01T00:00:00Z' },
    stages: {
      'corpus-vocab': { status: 'done' },
      pretrain: { status: 'cancelled', checkpoint: 'pretrain' },
    },
  });

describe('the pipeline is one resumable object', () => {
  it('a pipeline cancelled in pretraining has every later stage left, shown as pending', () => {
    const r = cancelled();
    expect(r.pipeline).toEqual([...RUN_STAGE_KEYS]);
    expect(pipelineLeft(r)).toEqual(RUN_STAGE_KEYS.slice(1));
    expect(pipelineResumable(r)).toBe(true);
    const shown = stagesShown(r);
    expect(shown.map((s) => s.key)).toEqual([...RUN_STAGE_KEYS]);
    expect(shown.slice(2).every((s) => s.status === 'pending')).toBe(true);
    expect(shown[1].status).toBe('cancelled');
  });

  it('Resume offers the whole pipeline, never its cancelled stage alone', () => {
    const r = cancelled();
    const choices = resumeChoices([r]);
    expect(choices).toHaveLength(1);
    expect(choices[0].stage).toBe('pipeline');
    expect(choices[0].detail).toContain('8 stages left');
    expect(choices[0].detail).toContain('pretrain cancelled');
    // From the run, the cancelled stage's row or a pending one: the pipeline.
    expect(resumeTarget(r)).toBe('pipeline');
    expect(resumeTarget(r, 'pretrain')).toBe('pipeline');
    expect(resumeTarget(r, 'prune')).toBe('pipeline');
  });

  it("the editor's Resume runs what the CLI's pipeline --resume runs, on the run's data", () => {
    const cwd = path.join(tmp, 'ws');
    const args = resumeArgs('pipeline', cancelled(path.join(cwd, 'runs', 'run2')), cwd)!;
    expect(args).toEqual(['--data', path.join(cwd, 'data/demo'), '--run', path.join(cwd, 'runs', 'run2'), '--resume']);
    const parsed = parse('pipeline', args);
    expect(parsed.resume).toBe(true);
    expect(parsed.data).toBe(path.join(cwd, 'data/demo'));
  });

  it('a finished pipeline, a running one and a stage run alone are not resumed as a pipeline', () => {
    const done = runView('/r', {
      pipeline: { steps: ['finetune', 'evaluate'] },
      stages: { finetune: { status: 'done' }, evaluate: { status: 'done' } },
    });
    expect(pipelineLeft(done)).toEqual([]);
    expect(stagesShown(done)).toHaveLength(2);
    const running = runView('/r', {
      pipeline: { steps: ['pretrain', 'finetune'] },
      stages: { pretrain: { status: 'running' } },
    });
    expect(pipelineLeft(running)).toEqual(['pretrain', 'finetune']);
    expect(pipelineResumable(running)).toBe(false);
    const alone = runView('/r', { stages: { finetune: { status: 'cancelled' } } });
    expect(resumeChoices([alone]).map((c) => c.stage)).toEqual(['finetune']);
    expect(resumeTarget(alone, 'finetune')).toBe('finetune');
    expect(resumeTarget(alone)).toBeUndefined();
    // A last stage done ends the pipeline even when it skipped one (no labels: no evaluation).
    const skipped = runView('/r', {
      pipeline: { steps: ['finetune', 'evaluate', 'analyze'] },
      stages: { finetune: { status: 'done' }, analyze: { status: 'done' } },
    });
    expect(pipelineLeft(skipped)).toEqual([]);
  });

  it("the next steps of the pipeline's evaluation act on the checkpoint it scored", () => {
    const r = runView('/ws/runs/a', {
      stages: {
        refinetune: { status: 'done', checkpoint: 'refinetune' },
        'evaluate-pruned': { status: 'done' },
        prune: { status: 'done', checkpoint: 'pruned' },
      },
    });
    const ev = r.stages.find((s) => s.key === 'evaluate-pruned')!;
    expect(stageCheckpoint(r, ev)).toBe(path.join('/ws/runs/a', 'refinetune'));
    expect(
      stageCheckpoint(
        r,
        r.stages.find((s) => s.key === 'prune')!,
      ),
    ).toBe(path.join('/ws/runs/a', 'pruned'));
  });

  it("the tree names the checkpoint the pipeline's evaluation scored", () => {
    expect(stageDescription({ key: 'evaluate', status: 'done', metrics: { score: 0.5 } })).toBe(
      'of finetune · score 0.5000',
    );
    expect(stageDescription({ key: 'evaluate-pruned', status: 'done', metrics: {} })).toBe('of refinetune');
  });
});

describe('every finished stage offers the next step', () => {
  it('fine-tune -> prune -> re-fine-tune -> evaluate -> ship', () => {
    expect(nextSteps('finetune').map((n) => n.command)).toEqual(['nextPrune']);
    expect(nextSteps('prune').map((n) => n.command)).toEqual(['nextRefinetune']);
    expect(nextSteps('refinetune').map((n) => n.command)).toEqual(['nextEvaluate']);
    expect(nextSteps('evaluate-pruned')).toBe(EXPORT_STEP);
    expect(EXPORT_STEP.map((n) => n.command)).toEqual(['exportOnnx', 'revealCheckpoint', 'copyLoadingSnippet']);
    expect(nextSteps('analyze')).toEqual([]);
  });

  it('every next-step command is declared, hidden from the palette where it needs a checkpoint', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8'));
    const declared = new Set(pkg.contributes.commands.map((c: { command: string }) => c.command));
    const src = fs.readFileSync(path.join(__dirname, '..', 'src', 'extension', 'commands.ts'), 'utf8');
    for (const key of ['pretrain', 'finetune', 'prune', 'refinetune', 'evaluate-pruned'])
      for (const n of nextSteps(key)) {
        expect(declared.has(`bertPruner.${n.command}`), n.command).toBe(true);
        // a stage's own command (the export) is registered from the registry, the others by name
        const stageCommands: string[] = Object.values(REGISTRY).map((d) => d.command);
        if (!stageCommands.includes(n.command)) expect(src).toContain(`reg('${n.command}'`);
      }
  });

  it('the loading snippet loads the folder with from_pretrained', () => {
    const s = loadingSnippet(path.join('/ws', 'runs', 'a', 'refinetune'));
    expect(s).toContain('BertForSequenceClassification.from_pretrained("/ws/runs/a/refinetune")');
    expect(s).toContain('AutoTokenizer.from_pretrained("/ws/runs/a/refinetune")');
  });
});

describe('pickers offer only what fits, in plain words', () => {
  const r = runView('/ws/runs/a', {
    stages: {
      pretrain: { status: 'done', checkpoint: 'pretrain' },
      finetune: { status: 'done', checkpoint: 'finetune' },
      prune: { status: 'running', checkpoint: 'pruned' },
      refinetune: { status: 'failed', checkpoint: 'refinetune' },
    },
  });
  it('a running prune and a failed re-fine-tune offer no checkpoint; the teacher is unpruned', () => {
    expect(checkpointChoices(r, 'pruned')).toEqual([]);
    expect(checkpointChoices(r, 'unpruned').map((c) => c.stage)).toEqual(['finetune', 'pretrain']);
    const done = runView('/ws/runs/a', {
      stages: { finetune: { status: 'done', checkpoint: 'finetune' }, prune: { status: 'done', checkpoint: 'pruned' } },
    });
    expect(checkpointChoices(done, checkpointKind('refinetune', 'model')).map((c) => c.stage)).toEqual(['prune']);
    expect(checkpointChoices(done, checkpointKind('refinetune', 'teacher')).map((c) => c.stage)).toEqual(['finetune']);
  });

  it('titles never show a flag', () => {
    for (const [stage, flag] of [
      ['finetune', 'from'],
      ['refinetune', 'teacher'],
      ['refinetune', 'model'],
      ['prune', 'model'],
      ['pretrain', 'config'],
    ] as const)
      expect(askTitle(stage, flag)).not.toMatch(/--/);
    expect(askTitle('refinetune', 'teacher')).toMatch(/unpruned/);
  });
});

describe('status bar and cancel', () => {
  it('labels every number: the run, the stage and its place, its share done', () => {
    const steps = ['corpus-vocab', 'pretrain', 'finetune', 'prune', 'refinetune'];
    expect(statusLabel({ target: 'run2', stage: 'prune', steps, percent: 40.7 })).toBe('run2 · prune 4/5 · 40%');
    expect(statusLabel({ target: 'run2', stage: 'pretrain' })).toBe('run2 · pretrain');
    expect(statusLabel({ target: '', stage: 'evaluate', percent: 5 })).toBe('evaluate · 5%');
  });
  it('asks before cancelling a stage that has run for more than a minute', () => {
    expect(cancelNeedsConfirm(0, 59_000)).toBe(false);
    expect(cancelNeedsConfirm(0, 61_000)).toBe(true);
  });
});
