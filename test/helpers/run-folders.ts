// A run's data files (io/paths.ts) and its pipeline stages' checkpoint folders (the registry's
// pipeline rows), under the names the tests use.
import { runPaths as runData } from '../../src/engine/io/paths';
import { stageFolders } from '../../src/engine/stages/registry';

export function runPaths(run: string) {
  const f = (stage: string) => stageFolders(run, stage) as { out: string; last: string };
  return {
    ...runData(run),
    pretrain: f('pretrain').out,
    pretrainLast: f('pretrain').last,
    finetune: f('finetune').out,
    finetuneLast: f('finetune').last,
    pruned: f('prune').out,
    refinetune: f('refinetune').out,
    refinetuneLast: f('refinetune').last,
  };
}
