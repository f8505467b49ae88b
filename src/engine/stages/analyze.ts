// analyze: parameter tree, size, FLOPs and latency of a checkpoint; the work is analyze/model.ts.
export { analyze } from '../analyze/model';
