// The layer map of docs/architecture.md, checked by `npm run lint` (dependency-cruiser). Type-only
// imports count (tsPreCompilationDeps) and so do dynamic import()s: a module imports only its own
// layer and the layers below it, and nothing imports in a circle.
/** The engine's layers, lowest first (paths under src/engine/, as regular expressions; each file in one). */
const LAYERS = [
  { name: 'base', paths: ['errors\\.ts', 'protocol\\.ts', 'context\\.ts'] },
  {
    name: 'files',
    paths: ['io/(atomic|ownership|paths|run|history|process|read|safetensors|torch-bin|weight-budget)\\.ts'],
  },
  { name: 'config and data', paths: ['config/', 'data/', 'io/tokenizer-files\\.ts'] },
  { name: 'kernels', paths: ['backend/(?!index\\.ts|speeds\\.ts)', 'ops/'] },
  { name: 'model', paths: ['model/'] },
  {
    name: 'checkpoints, metrics, backend choice',
    paths: ['io/(checkpoint|thresholds)\\.ts', 'train/metrics\\.ts', 'backend/(index|speeds)\\.ts'],
  },
  { name: 'train', paths: ['train/(?!metrics\\.ts)'] },
  { name: 'prune, analyze and export', paths: ['prune/', 'analyze/', 'export/'] },
  { name: 'format', paths: ['format\\.ts'] },
  { name: 'stages', paths: ['stages/'] },
  { name: 'shells', paths: ['commands\\.ts', 'cli\\.ts', 'engine-process\\.ts'] },
];

const re = (paths) => `^src/engine/(${paths.join('|')})`;
const layerRules = LAYERS.slice(0, -1).map((layer, i) => ({
  name: `layer-${layer.name.replace(/\W+/g, '-')}`,
  comment: `${layer.name} imports only its own layer and the ones below it (docs/architecture.md)`,
  severity: 'error',
  from: { path: re(layer.paths) },
  to: { path: re(LAYERS.slice(i + 1).flatMap((l) => l.paths)) },
}));

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'No module imports itself through others (type-only and dynamic imports included).',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'engine-not-extension',
      comment: 'The engine never imports the extension or vscode.',
      severity: 'error',
      from: { path: '^src/engine/' },
      to: { path: '^(src/extension/|vscode$)' },
    },
    {
      name: 'model-train-not-backend',
      comment: 'model/ and train/ call the kernels through ops(); the backend chooses them.',
      severity: 'error',
      from: { path: '^src/engine/(model|train)/' },
      to: { path: '^src/engine/backend/' },
    },
    {
      name: 'every-module-in-a-layer',
      comment: 'Each engine module sits in a layer of the map above (a new folder or file is placed there first).',
      severity: 'error',
      from: { path: '^src/engine/', pathNot: re(LAYERS.flatMap((l) => l.paths)) },
      to: {},
    },
    ...layerRules,
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(node_modules|dist|out)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    // Dynamic import()s (the stage loaders) count like static ones.
    moduleSystems: ['es6', 'cjs'],
  },
};
