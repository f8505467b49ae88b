// Bundles the engine (CLI + forked process) and the extension into dist/. tfjs stays external:
// its backends load native / wasm binaries from their own package folders at run time.
import * as esbuild from 'esbuild';
import * as fs from 'node:fs';

const watch = process.argv.includes('--watch');
const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  sourcemap: true,
  // onnxruntime-node: a development dependency, required at run time where installed (export/ort.ts).
  external: ['vscode', '@tensorflow/*', 'onnxruntime-node'],
  logLevel: 'warning',
};
const entries = [
  { entryPoints: ['src/engine/cli.ts'], outfile: 'dist/cli.js' },
  { entryPoints: ['src/engine/engine-process.ts'], outfile: 'dist/engine.js' },
];
// mainFields: prefer ES modules; jsonc-parser's UMD 'main' hides its requires from the bundler.
if (fs.existsSync('src/extension/extension.ts'))
  entries.push({
    entryPoints: ['src/extension/extension.ts'],
    outfile: 'dist/extension.js',
    mainFields: ['module', 'main'],
  });
// The webview panels' page script (browser code, Chart.js bundled in: webviews load nothing remote).
if (fs.existsSync('src/extension/webview/main.ts')) {
  entries.push({
    entryPoints: ['src/extension/webview/main.ts'],
    outfile: 'dist/webview/panels.js',
    platform: 'browser',
    format: 'iife',
    target: 'es2022',
    minify: true,
    external: [],
  });
}

for (const e of entries) {
  if (watch) await (await esbuild.context({ ...common, ...e })).watch();
  else await esbuild.build({ ...common, ...e });
}
