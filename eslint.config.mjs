// Lint: typescript-eslint's recommended rules over the engine, the extension, the tests and the
// scripts, and one rule of layout: no line over 120 characters (Prettier formats the rest).
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: [
      'dist/**',
      'node_modules/**',
      'runs/**',
      'data/**',
      'out/**',
      'test-results/**',
      'native/build/**',
      '.tmp/**',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      'max-len': ['error', { code: 120, ignoreUrls: true, ignoreRegExpLiterals: true }],
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' },
      ],
    },
  },
  { files: ['src/extension/webview/**'], languageOptions: { globals: { ...globals.browser } } },
  {
    // Kernels are chosen once (src/engine/ops): model and training code call ops() and never ask
    // which backend is active, so they import no backend module (docs/architecture.md).
    files: ['src/engine/model/**', 'src/engine/train/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['**/backend', '**/backend/**', '@tensorflow/tfjs-backend-*'],
              message: 'model/ and train/ call the kernels through ops() (src/engine/ops); the backend chooses them.',
            },
          ],
        },
      ],
    },
  },
  {
    // The CLI entry is a plain CommonJS script (it require()s the bundle in dist/).
    files: ['bin/**/*.js'],
    languageOptions: { sourceType: 'commonjs' },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
);
