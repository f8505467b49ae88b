// Each stage's implementation, imported when it runs (the registry itself stays plain data, so the
// extension reads it without loading tfjs). A stage's module gives its command (`run`) and, for a
// pipeline stage, the step the pipeline runs (`step`). The Record type makes a stage without a
// loader a compile error.
import type { StageModule, StageName } from './registry';

export const LOADERS: Record<StageName, () => Promise<StageModule>> = {
  'demo-data': () => import('./demo-data').then((m) => ({ run: m.runDemoData })),
  'corpus-vocab': () => import('./corpus').then((m) => ({ run: m.runCorpusVocab, step: m.corpusVocabStep })),
  pretrain: () => import('./pretrain').then((m) => ({ run: m.runPretrain, step: m.pretrainStep })),
  finetune: () => import('./finetune').then((m) => ({ run: m.runFinetune, step: m.finetuneStep })),
  evaluate: () => import('./evaluate').then((m) => ({ run: m.runEvaluate })),
  predict: () => import('./evaluate').then((m) => ({ run: m.runPredict })),
  analyze: () => import('./analyze').then((m) => ({ run: m.runAnalyze })),
  prune: () => import('./prune').then((m) => ({ run: m.runPrune, step: m.pruneStep })),
  refinetune: () => import('./finetune').then((m) => ({ run: m.runRefinetune, step: m.refinetuneStep })),
  'prune-sweep': () => import('./prune-sweep').then((m) => ({ run: m.runPruneSweep })),
  pipeline: () => import('./pipeline').then((m) => ({ run: m.runPipeline })),
  export: () => import('./export').then((m) => ({ run: m.runExport })),
  bench: () => import('./bench').then((m) => ({ run: m.runBench })),
};

/** A stage's module, loaded. */
export function loadStage(name: StageName): Promise<StageModule> {
  return LOADERS[name]();
}
