// The packaged extension (npm run vsix = scripts/vsix.mjs, for this machine's target) carries the
// fast paths and only this platform's binaries: the OpenBLAS addon (linked statically: no
// libopenblas for the user to install), Dawn's dawn.node for this platform and no other, the
// tfjs-backend-webgpu bundle, and THIRD-PARTY-NOTICES.txt. Packages into a temp folder (a few
// seconds), so it never touches the bert-pruner.vsix a developer or the e2e test made.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bp, ROOT } from './helpers/cli';

const ADDON = 'native/build/Release/bert_native.node';
const builtDist = fs.existsSync(path.join(ROOT, 'dist', 'extension.js'));
const builtAddon = fs.existsSync(path.join(ROOT, ADDON));
const haveLdd = spawnSync('ldd', ['--version']).status === 0;
const target = `${process.platform}-${process.arch}`;
const dawnArch = process.platform === 'darwin' ? 'universal' : process.arch;
const dawnDir = `node_modules/webgpu/dist/${process.platform}-${dawnArch}`;
const haveDawn = fs.existsSync(path.join(ROOT, dawnDir, 'dawn.node'));

interface Entry {
  name: string;
  method: number;
  compressed: number;
  size: number;
  localOffset: number;
}

/** The entries of a zip file, from its central directory (a .vsix is a zip). */
function zipEntries(buf: Buffer): Map<string, Entry> {
  const eocd = buf.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  if (eocd < 0) throw new Error('not a zip file');
  const count = buf.readUInt16LE(eocd + 10);
  let p = buf.readUInt32LE(eocd + 16);
  const out = new Map<string, Entry>();
  for (let i = 0; i < count; i++) {
    if (buf.readUInt32LE(p) !== 0x02014b50) throw new Error('bad central directory');
    const nameLen = buf.readUInt16LE(p + 28);
    const name = buf.toString('utf8', p + 46, p + 46 + nameLen);
    out.set(name, {
      name,
      method: buf.readUInt16LE(p + 10),
      compressed: buf.readUInt32LE(p + 20),
      size: buf.readUInt32LE(p + 24),
      localOffset: buf.readUInt32LE(p + 42),
    });
    p += 46 + nameLen + buf.readUInt16LE(p + 30) + buf.readUInt16LE(p + 32);
  }
  return out;
}

function unzipEntry(buf: Buffer, e: Entry): Buffer {
  const h = e.localOffset;
  const start = h + 30 + buf.readUInt16LE(h + 26) + buf.readUInt16LE(h + 28);
  const data = buf.subarray(start, start + e.compressed);
  return e.method === 0 ? Buffer.from(data) : zlib.inflateRawSync(data);
}

describe.skipIf(!builtDist)(`the .vsix for ${target}`, () => {
  let tmp = '';
  let vsix: Buffer;
  let entries: Map<string, Entry>;
  let files: string[];
  let log = '';

  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'bp-vsix-'));
    const out = path.join(tmp, 'bert-pruner.vsix');
    const r = await bp([path.join(ROOT, 'scripts', 'vsix.mjs'), '--out', out], ROOT, 'node');
    log = `${r.stdout}\n${r.stderr}`;
    if (r.code !== 0) throw new Error(`npm run vsix failed (${r.code}):\n${log}`);
    vsix = fs.readFileSync(out);
    entries = zipEntries(vsix);
    files = [...entries.keys()].filter((f) => f.startsWith('extension/')).map((f) => f.slice('extension/'.length));
  }, 120_000);

  afterAll(() => {
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('is made for this platform and says what it ships', () => {
    const manifest = unzipEntry(vsix, entries.get('extension.vsixmanifest')!).toString('utf8');
    expect(manifest).toContain(`TargetPlatform="${target}"`);
    expect(log).toMatch(new RegExp(`bert-pruner\\.vsix: ${target}, [\\d.]+ MB; ships `));
  });

  it('carries the bundles, the notices and the webgpu backend, not the unused parts of their packages', () => {
    for (const f of [
      'dist/extension.js',
      'dist/engine.js',
      'dist/cli.js',
      'THIRD-PARTY-NOTICES.txt',
      'node_modules/@tensorflow/tfjs-backend-webgpu/package.json',
      'node_modules/@tensorflow/tfjs-backend-webgpu/dist/tf-backend-webgpu.node.js',
      'node_modules/webgpu/package.json',
      'node_modules/webgpu/LICENSE.md',
    ])
      expect(files, f).toContain(f);
    const webgpuTfjs = files.filter((f) => f.startsWith('node_modules/@tensorflow/tfjs-backend-webgpu/'));
    expect(webgpuTfjs.sort()).toEqual([
      'node_modules/@tensorflow/tfjs-backend-webgpu/dist/tf-backend-webgpu.node.js',
      'node_modules/@tensorflow/tfjs-backend-webgpu/package.json',
    ]);
    const unused = files.filter((f) =>
      /^node_modules\/(webgpu\/(node_modules|build|index\.js|types\.d\.ts)|@webgpu\/|debug\/|ms\/)/.test(f),
    );
    expect(unused).toEqual([]);
    const notices = unzipEntry(vsix, entries.get('extension/THIRD-PARTY-NOTICES.txt')!).toString('utf8');
    for (const s of ['OpenBLAS', 'The University of Texas at Austin', 'The Dawn & Tint Authors', 'Apache License'])
      expect(notices, s).toContain(s);
  });

  it.skipIf(!haveDawn)(`carries ${dawnDir}/dawn.node and no other platform's Dawn`, () => {
    expect(files).toContain(`${dawnDir}/dawn.node`);
    const dawn = files.filter((f) => f.startsWith('node_modules/webgpu/dist/'));
    expect(dawn.filter((f) => !f.startsWith(`${dawnDir}/`))).toEqual([]);
  });

  it('carries nothing from native/ but the addon', () => {
    const native = files.filter((f) => f.startsWith('native/'));
    expect(native).toEqual(builtAddon ? [ADDON] : []);
  });

  // Where the addon was not built (no libopenblas-dev, not Linux) there is nothing to check.
  it.skipIf(!builtAddon || !haveLdd)('ships an addon that needs no libopenblas and loads on its own', () => {
    const addon = path.join(tmp, 'bert_native.node');
    fs.writeFileSync(addon, unzipEntry(vsix, entries.get(`extension/${ADDON}`)!));
    const ldd = spawnSync('ldd', [addon], { encoding: 'utf8' });
    expect(ldd.status, ldd.stderr).toBe(0);
    const why = 'OpenBLAS linked dynamically: install its static library (libopenblas-dev), npm run build:native';
    expect(ldd.stdout, why).not.toMatch(/libopenblas|libgfortran|libgomp|libquadmath/);
    const env = { ...process.env };
    delete env.LD_LIBRARY_PATH;
    const load = spawnSync(
      process.execPath,
      ['-e', `process.stdout.write(require(${JSON.stringify(addon)}).config())`],
      {
        encoding: 'utf8',
        env,
      },
    );
    expect(load.status, load.stderr).toBe(0);
    expect(load.stdout).toMatch(/^OpenBLAS /);
  });
});
