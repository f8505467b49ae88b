// Builds the optional native matmul (native/: an N-API addon over OpenBLAS's cblas_sgemm) with the
// node-gyp that ships inside npm. Called by `npm run build`; it never fails the build: when
// something is missing (Debian's libopenblas-dev, a C compiler, Node's headers) it prints one line
// saying why the native matmul is skipped, and the engine runs on the pure wasm path.
//
// OpenBLAS is linked statically where its static library is found (libopenblas-dev has it), so the
// addon needs only glibc at run time and ships in the .vsix alone; else dynamically (-lopenblas,
// then the user needs libopenblas0). The line it prints says which.
//
//   node scripts/build-native.mjs [--force] [--dynamic]   BERT_PRUNER_NATIVE=0 skips the build too
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dir = path.join(root, 'native');
const addon = path.join(dir, 'build', 'Release', 'bert_native.node');
const sources = ['matmul.c', 'kernels.c', 'elementwise.c', 'mathf.h', 'native.h', 'binding.gyp'].map((f) =>
  path.join(dir, f),
);

function skip(why) {
  console.log(`native matmul skipped: ${why} (the engine uses the pure wasm matmul)`);
  process.exit(0);
}

if (process.env.BERT_PRUNER_NATIVE === '0') skip('BERT_PRUNER_NATIVE=0');
if (process.platform !== 'linux') skip(`only built on Linux (this is ${process.platform})`);

// Up to date: nothing to do (npm run build runs this every time).
const mtime = (f) => (fs.existsSync(f) ? fs.statSync(f).mtimeMs : 0);
if (!process.argv.includes('--force') && mtime(addon) > Math.max(...sources.map(mtime))) process.exit(0);

// OpenBLAS: the unversioned libopenblas.so and libopenblas.a come with the -dev package only.
const ld = spawnSync('ldconfig', ['-p'], { encoding: 'utf8' });
const libDirs = ['/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib64', '/usr/lib', '/usr/local/lib'];
const haveShared =
  /libopenblas\.so\s/.test(ld.stdout ?? '') || libDirs.some((d) => fs.existsSync(path.join(d, 'libopenblas.so')));
// The static library: Debian's pthread variant first (the default alternative may be the OpenMP one,
// which would need libgomp at run time; that one is not taken).
const staticLib = process.argv.includes('--dynamic')
  ? null
  : (libDirs
      .flatMap((d) => [path.join(d, 'openblas-pthread', 'libopenblas.a'), path.join(d, 'libopenblas.a')])
      .filter((f) => fs.existsSync(f))
      .map((f) => fs.realpathSync(f))
      .find((f) => !/openmp/.test(f)) ?? null);
if (!haveShared && !staticLib) skip('OpenBLAS not found (apt-get install -y libopenblas-dev)');

// Node's headers: node-gyp would download them, which fails offline; use the installed ones.
const nodedir = path.resolve(path.dirname(process.execPath), '..');
if (!fs.existsSync(path.join(nodedir, 'include', 'node', 'node_api.h')))
  skip(`no Node.js headers under ${nodedir}/include/node`);

// node-gyp: a local one, else the one bundled with npm.
const candidates = [
  path.join(root, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  process.env.npm_execpath
    ? path.join(path.dirname(process.env.npm_execpath), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js')
    : '',
  path.join(nodedir, 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
].filter(Boolean);
const gyp = candidates.find((f) => fs.existsSync(f));
if (!gyp) skip('node-gyp not found (it ships with npm)');

/** node-gyp rebuild, OpenBLAS from `lib` (a static library) or -lopenblas; null when it worked, else why not. */
function build(lib) {
  const args = [gyp, 'rebuild', `--nodedir=${nodedir}`, '-C', dir];
  if (lib) args.push(`--openblas_static=${lib}`);
  const r = spawnSync(process.execPath, args, { encoding: 'utf8' });
  if (r.status !== 0 || !fs.existsSync(addon)) {
    const err = `${r.stdout ?? ''}\n${r.stderr ?? ''}`
      .split('\n')
      .find((l) => /error/i.test(l) && !/gyp ERR! (stack|cwd|node|System|command|not ok)/.test(l));
    return `node-gyp failed${err ? `: ${err.trim()}` : r.error ? `: ${r.error.message}` : ''}`;
  }
  // It must load here too (e.g. the runtime libopenblas.so.0 present, no symbol left unresolved):
  // else remove it, so the engine does not try it at every start.
  const load = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(addon)}).config()`], { encoding: 'utf8' });
  if (load.status !== 0) {
    fs.rmSync(addon, { force: true });
    const line = (load.stderr || '')
      .trim()
      .split('\n')
      .find((l) => /Error|error/.test(l));
    return `the built addon does not load: ${line ?? 'unknown error'}`;
  }
  return null;
}

let why = staticLib ? build(staticLib) : 'no static OpenBLAS';
let how = `OpenBLAS linked statically from ${staticLib}; needs only glibc at run time`;
if (why && staticLib && haveShared) console.log(`native matmul: static link failed (${why}); trying -lopenblas`);
if (why && haveShared) {
  why = build(null);
  how = 'OpenBLAS linked dynamically (-lopenblas); needs libopenblas0 at run time';
}
if (why) skip(why);
// What the dynamic loader will open for it (ldd is part of glibc; where it is missing, say nothing).
const deps = spawnSync('ldd', [addon], { encoding: 'utf8' });
const blasDep = /libopenblas\S*/.exec(deps.stdout ?? '');
if (staticLib && how.includes('statically') && blasDep) how += ` (but ldd lists ${blasDep[0]})`;
const kb = fs.statSync(addon).size / 1024;
const size = kb < 1024 ? `${kb.toFixed(0)} KB` : `${(kb / 1024).toFixed(1)} MB`;
console.log(`native matmul built: ${path.relative(root, addon)} (${size}, ${how})`);
