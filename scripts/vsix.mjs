// Packages the extension for one VS Code target platform (`npm run vsix`): vsce package --target,
// with .vscodeignore plus the binaries of that platform only:
//   - node_modules/webgpu/dist/<platform>/ (Dawn's dawn.node; on Windows its DLLs too), for the
//     webgpu backend. The `webgpu` package holds all five platforms (132 MB); one is ~21 MB.
//   - native/build/Release/bert_native.node (the OpenBLAS addon), where it was built here for
//     this same target (scripts/build-native.mjs, Linux only).
// The target is this machine's unless named:
//
//   node scripts/vsix.mjs [--target darwin-arm64] [--out file.vsix]
//
// Out: bert-pruner.vsix for this machine's target, bert-pruner-<target>.vsix for another one.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const arg = (name) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
};

// VS Code's target names are Node's platform-arch (alpine-* for musl Linux, not handled here).
const hostTarget = `${process.platform}-${process.arch === 'arm' ? 'armhf' : process.arch}`;
const target = arg('--target') ?? hostTarget;
const [platform, arch] = target.split('-');
const out = arg('--out') ?? (target === hostTarget ? 'bert-pruner.vsix' : `bert-pruner-${target}.vsix`);

const include = [];
const notes = [];

// Dawn: the package has one universal binary for macOS (webgpu.ts looks there too).
const dawnDir = `node_modules/webgpu/dist/${platform}-${platform === 'darwin' ? 'universal' : arch}`;
if (fs.existsSync(path.join(root, dawnDir, 'dawn.node'))) {
  include.push(`!${dawnDir}/**`);
  notes.push(`dawn.node (${dawnDir})`);
} else notes.push(`no dawn.node for ${target} (the webgpu backend is not available there)`);

// The OpenBLAS addon is built for this machine only.
const addon = 'native/build/Release/bert_native.node';
if (target !== hostTarget) notes.push(`no OpenBLAS addon (built for ${hostTarget} only)`);
else if (!fs.existsSync(path.join(root, addon))) notes.push('no OpenBLAS addon (not built: see npm run build:native)');
else {
  include.push(`!${addon}`);
  const ldd = spawnSync('ldd', [path.join(root, addon)], { encoding: 'utf8' });
  const dynamic = /libopenblas/.test(ldd.stdout ?? '');
  notes.push(`${addon} (${dynamic ? 'OpenBLAS linked dynamically: users need libopenblas0' : 'OpenBLAS static'})`);
}

// vsce reads one ignore file: .vscodeignore plus the lines above (a `!` line wins over any ignore).
// One per process: a test may package while another run does.
const ignoreFile = path.join(root, '.tmp', `vscodeignore-${target}-${process.pid}`);
fs.mkdirSync(path.dirname(ignoreFile), { recursive: true });
const base = fs.readFileSync(path.join(root, '.vscodeignore'), 'utf8');
fs.writeFileSync(ignoreFile, `${base}\n# Added by scripts/vsix.mjs for ${target}\n${include.join('\n')}\n`);

const vsce = path.join(root, 'node_modules', '@vscode', 'vsce', 'vsce');
const args = [
  vsce,
  'package',
  '--target',
  target,
  '--ignoreFile',
  ignoreFile,
  '--allow-missing-repository',
  '--no-rewrite-relative-links',
  '--readme-path',
  'README.extension.md',
  '--out',
  out,
];
const r = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
fs.rmSync(ignoreFile, { force: true });
if (r.status !== 0) process.exit(r.status ?? 1);
const mb = (fs.statSync(path.resolve(root, out)).size / 1024 / 1024).toFixed(1);
console.log(`${out}: ${target}, ${mb} MB; ships ${notes.join('; ')}`);
