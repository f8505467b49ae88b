// corpus-vocab: the run's data and vocabulary; the work is data/corpus.ts.
export { corpusVocab } from '../data/corpus';
// Compatibility: runPaths lives in io/paths.ts.
export { runPaths } from '../io/paths';
