// What the prune stage is given: prune/run.ts runs it, inputs.ts and recovery.ts read it.
import type { PruneConfig, Settings } from '../config/settings';

export interface PruneStageOptions {
  model: string;
  config: PruneConfig;
  configFile?: string;
  out: string;
  /** Labeled or unlabeled GAIIC csv: importance data (labels needed only without use_logits) and,
   *  when labeled, the metric before / right after pruning. */
  dataFile: string;
  /** Corpus (one text a line): vocabulary counts, and importance data for importance_data 'corpus'. */
  corpusFile?: string;
  /** Raw-text files (the run's) to count the checkpoint's tokens on when it has no token counts. */
  countTexts?: string[];
  seed: number;
  /** --force: replace an --out (or a scratch folder) that bert-pruner did not make. */
  force?: boolean;
  /** The run's settings: gradual pruning (transformer.recovery_epochs) trains with their refinetune
   *  settings between steps, distilling from `model`. */
  settings?: Settings;
}
