// finetune / refinetune: fine-tuning of a classifier; the work is train/classifier.ts.
export { finetuneClassifier as finetune } from '../train/classifier';
