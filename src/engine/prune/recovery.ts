// The recovery rounds of gradual pruning (transformer.recovery_epochs > 0): between pruning
// iterations, the sliced model is re-fine-tuned for a few epochs and loaded back.
import * as path from 'node:path';
import type { TransformerPruneConfig } from '../config/settings';
import type { Vocab } from '../data/vocab';
import { loadCheckpoint, PRUNED_FROM_FILE, saveCheckpoint } from '../io/checkpoint';
import type { BertConfig } from '../model/config';
import { MLM_PREFIX } from '../model/names';
import type { Params } from '../model/params';
import { log, type StageContext } from '../context';
import { finetuneClassifier } from '../train/classifier';
import { modelStats } from './report';
import type { PruneStageOptions } from './options';
import type { KeptFrom, PruneIteration } from './transformer';

/**
 * Where gradual pruning keeps its rounds' checkpoints: beside the output, under a name only
 * bert-pruner uses, created (with a marker) by the prune stage and removed when it ends
 * (io/ownership.ts makeScratch). A user's own `<out>-recovery` is never touched.
 */
export function recoveryDir(out: string): string {
  return `${path.resolve(out)}.bert-pruner-recovery`;
}

/**
 * The recover hook of gradual pruning: save the sliced model, re-fine-tune it for recovery_epochs
 * (refinetune settings, distilled from the unpruned model, on the labeled data file) and load the
 * best epoch back into `params`. The round's checkpoints live in recoveryDir(out) until the stage ends.
 */
export function recoveryHook(o: PruneStageOptions, tc: TransformerPruneConfig, vocab: Vocab, ctx: StageContext) {
  const settings = o.settings;
  if (!settings) throw new Error('prune: recovery_epochs needs the run settings');
  const dir = recoveryDir(o.out);
  return async (params: Params, cfg: BertConfig, it: PruneIteration, from?: KeptFrom): Promise<BertConfig> => {
    const sliced = path.join(dir, `iter-${it.iter}`);
    // Layer-wise distillation (refinetune.distill_hidden) maps the sliced model onto the teacher.
    await saveCheckpoint(sliced, cfg, params, vocab, from ? { json: { [PRUNED_FROM_FILE]: from } } : {});
    const before = modelStats(params, cfg, 0).encoder_params;
    log(
      ctx,
      `recovery after prune iteration ${it.iter}: ` +
        `${tc.recovery_epochs} epochs of re-fine-tuning (${before} encoder params)`,
    );
    const r = await finetuneClassifier('', settings, ctx, {
      stage: 'prune',
      from: sliced,
      out: `${sliced}-best`,
      last: `${sliced}-last`,
      teacher: o.model,
      trainFile: o.dataFile,
      settings: { ...settings.refinetune, epochs: tc.recovery_epochs },
    });
    if (r.metrics.val_score !== undefined) it.recovered_val_score = r.metrics.val_score;
    // The trained tensors replace the old ones; an MLM head (which fine-tuning leaves out and head
    // or FFN pruning does not touch) is kept.
    const ck = loadCheckpoint(r.checkpoint);
    for (const [name, v] of ck.params) {
      params.get(name)?.dispose();
      params.set(name, v);
    }
    for (const [name, v] of params) {
      if (!ck.params.has(name) && !name.startsWith(MLM_PREFIX)) {
        v.dispose();
        params.delete(name);
      }
    }
    return ck.config;
  };
}
