import * as path from 'node:path';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Engine tests train small models and run the CLI as a subprocess: generous per-test time,
    // never a timing assertion.
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Two cores: test files run in two workers.
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    pool: 'forks',
    // Two test workers on two cores: one OpenBLAS thread each (and for the CLIs they start).
    // bench records its speeds for auto (backend/speeds.ts) in a cache folder: the (ignored)
    // test-results/ one, not the user's.
    env: {
      BERT_PRUNER_BLAS_THREADS: '1',
      BERT_PRUNER_CACHE_DIR: path.join(__dirname, 'test-results', 'cache'),
    },
  },
});
