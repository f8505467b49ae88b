// prune: vocabulary pruning, then transformer pruning, of a checkpoint; the work is prune/run.ts.
export { pruneCheckpoint as pruneStage } from '../prune/run';
// Compatibility re-exports (callers import them from here): the prune config helper and the sweep stage.
export { resolvePruneConfig } from '../prune/config';
export { pruneSweep } from './prune-sweep';
