// Lint: typescript-eslint's recommended rules over the engine, the extension, the tests and the
// scripts, and one rule of layout: no line over 120 characters (Prettier formats the rest).
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

/** The fs calls that read a file: only src/engine/io/read.ts makes them. */
const READS = 'readFile|readFileSync|readSync|read|readv|readvSync|createReadStream|openAsBlob';

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
    // Every file read in src/ goes through the one bounded reader, src/engine/io/read.ts (a regular
    // file, at most its kind's limit, never trusting stat's size). The package's own files are not
    // read with fs at all (they are bundled, or loaded by the webview by URI), so nothing is exempt
    // but the reader itself.
    files: ['src/**/*.ts'],
    ignores: ['src/engine/io/read.ts'],
    rules: {
      'no-restricted-syntax': [
        'error',
        {
          selector: `MemberExpression[property.name=/^(${READS})$/][object.name=/^(fs|fsp|promises)$/]`,
          message: 'read files through src/engine/io/read.ts (bounded, regular files only)',
        },
        {
          selector: 'MemberExpression[property.name=/^(readFile|open)$/][object.property.name="promises"]',
          message: 'read files through src/engine/io/read.ts (bounded, regular files only)',
        },
        {
          selector:
            'ImportDeclaration[source.value=/^(node:)?fs$/] > ' +
            `ImportSpecifier[imported.name=/^(${READS}|promises)$/]`,
          message: 'read files through src/engine/io/read.ts (bounded, regular files only)',
        },
      ],
      'no-restricted-imports': [
        'error',
        {
          paths: [
            { name: 'node:fs/promises', message: 'read files through src/engine/io/read.ts' },
            { name: 'fs/promises', message: 'read files through src/engine/io/read.ts' },
          ],
        },
      ],
    },
  },
  {
    // Kernels are chosen once (src/engine/ops): model and training code call ops() and never ask
    // which backend is active, so they import no backend module (docs/architecture.md). A later
    // block's no-restricted-imports replaces an earlier one's for the same files, so the bounded
    // reader's fs/promises ban is repeated here.
    files: ['src/engine/model/**', 'src/engine/train/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [
            { name: 'node:fs/promises', message: 'read files through src/engine/io/read.ts' },
            { name: 'fs/promises', message: 'read files through src/engine/io/read.ts' },
          ],
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
