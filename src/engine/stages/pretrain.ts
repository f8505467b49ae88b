// pretrain: masked-LM pretraining from scratch; the work is train/pretrain.ts.
export { pretrain } from '../train/pretrain';
