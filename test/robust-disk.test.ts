// Disk full and unwritable run folders, for real where the system allows it: a run folder under a
// file (ENOTDIR), a file size limit hit mid-checkpoint (ulimit -f, EFBIG: what a FAT32 drive gives
// at 4 GB), and, in a private mount namespace (unshare -rm), a size-limited tmpfs that fills up
// during a checkpoint (ENOSPC) and a run folder bind-mounted read-only (EROFS). Each time: one
// clear message, exit 2, the previous results byte for byte intact, no temp files left behind, and
// the run goes on once the disk has room again.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectUserError, ROOT } from './helpers/cli';
import { bp, TINY, snapshot } from './robust-helpers';

let root = '';
let run = '';
const BIN = path.join(ROOT, 'bin', 'bert-pruner.js');

const leftovers = (dir: string) =>
  fs
    .readdirSync(dir, { recursive: true })
    .map(String)
    .filter((n) => /\.(tmp|old)-/.test(n));

// User + mount namespaces: available to root and, on most Linux systems, to everyone.
const canUnshare =
  process.platform === 'linux' &&
  (() => {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), 'bp-ns-'));
    const r = spawnSync('unshare', ['-rm', 'sh', '-c', `mount -t tmpfs -o size=1m none "${d}" && echo ok`], {
      encoding: 'utf8',
      timeout: 10_000,
    });
    return r.stdout?.trim() === 'ok';
  })();

afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
beforeAll(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'bp-robust-disk-'));
  run = path.join(root, 'run');
  for (const a of [
    ['demo-data', '--out', path.join(root, 'data'), '--train-rows', '200', '--test-rows', '40'],
    ['corpus-vocab', '--data', path.join(root, 'data'), '--run', run, ...TINY],
    ['pretrain', '--run', run, ...TINY],
    ['finetune', '--run', run, ...TINY, '--config', path.join(root, 'one.json')],
  ]) {
    fs.writeFileSync(path.join(root, 'one.json'), JSON.stringify({ finetune: { epochs: 1 } }));
    const r = await bp(a);
    expect(r.code, r.stderr).toBe(0);
  }
});

describe('unwritable places', () => {
  it('a run folder or output folder under a file: one line naming it, no stack trace', async () => {
    const f = path.join(root, 'a-file');
    fs.writeFileSync(f, 'not a folder');
    expectUserError(
      await bp(['pretrain', '--run', path.join(f, 'run'), ...TINY]),
      /a-file\/run: cannot mkdir: a part of the path is a file, not a directory/,
    );
    expectUserError(
      await bp(['demo-data', '--out', path.join(f, 'data')]),
      /a-file\/data: cannot mkdir: a part of the path is a file/,
    );
    expectUserError(
      await bp([
        'predict',
        '--model',
        path.join(run, 'finetune'),
        '--data',
        path.join(run, 'data', 'test.csv'),
        '--out',
        path.join(f, 'p.jsonl'),
        ...TINY,
      ]),
      /a-file\/p\.jsonl: cannot write, a parent of .* is a file/,
    );
    expect(fs.readFileSync(f, 'utf8')).toBe('not a folder');
  });

  it.skipIf(process.platform === 'win32')(
    'a file size limit hit while writing a checkpoint (ulimit -f, EFBIG)',
    async () => {
      const before = snapshot(run);
      // 64 KiB: run.json fits, model.safetensors (about 150 KB) does not.
      const r = await bp(
        [
          '-c',
          `ulimit -f 64; exec "${process.execPath}" "${BIN}" finetune --run "${run}" ${TINY.join(' ')} ` +
            `--config "${path.join(root, 'one.json')}"`,
        ],
        ROOT,
        'bash',
      );
      expectUserError(r, /model\.safetensors: cannot write, file too large/);
      expect(snapshot(run)).toEqual(before);
      expect(leftovers(run)).toEqual([]);
      expect(JSON.parse(fs.readFileSync(path.join(run, 'run.json'), 'utf8')).stages.finetune.status).toBe('failed');
    },
  );
});

describe.skipIf(!canUnshare)('a full disk and a read-only run folder (private mount namespace)', () => {
  it('disk full mid-checkpoint, then read-only: clear errors, nothing lost, and the run continues', async () => {
    const before = snapshot(run);
    const mnt = fs.mkdtempSync(path.join(root, 'mnt-'));
    const out = fs.mkdtempSync(path.join(root, 'out-'));
    const engine = `"${process.execPath}" "${BIN}"`;
    const args = `${TINY.join(' ')} --config "${path.join(root, 'one.json')}"`;
    const script = `
      set -u
      mount -t tmpfs -o size=8m none "$MNT" || exit 90
      cp -a "$RUN" "$MNT/run" || exit 91
      # Fill the disk, leaving 96 KiB: enough for run.json, not for a checkpoint.
      avail=$(df --output=avail -k "$MNT" | tail -1)
      head -c $(( (avail - 96) * 1024 )) /dev/zero > "$MNT/filler" 2>/dev/null
      ${engine} finetune --run "$MNT/run" ${args} > "$OUT/full.out" 2> "$OUT/full.err"; echo $? > "$OUT/full.code"
      cp -a "$MNT/run" "$OUT/after-full"
      rm "$MNT/filler"
      mount --bind "$MNT/run" "$MNT/run" && mount -o remount,bind,ro "$MNT/run" "$MNT/run" || exit 92
      ${engine} finetune --run "$MNT/run" ${args} > "$OUT/ro.out" 2> "$OUT/ro.err"; echo $? > "$OUT/ro.code"
      umount "$MNT/run"
      ${engine} finetune --run "$MNT/run" ${args} > "$OUT/ok.out" 2> "$OUT/ok.err"; echo $? > "$OUT/ok.code"
      cp -a "$MNT/run" "$OUT/after-ok"
    `;
    const r = await bp(['-rm', 'bash', '-c', script], ROOT, 'unshare', {
      ...process.env,
      MNT: mnt,
      RUN: run,
      OUT: out,
    });
    expect(r.code, r.stderr).toBe(0);
    const read = (f: string) => fs.readFileSync(path.join(out, f), 'utf8');

    // Disk full while writing the checkpoint: one line, previous results intact, no temp files.
    expectUserError(
      { code: Number(read('full.code')), stderr: read('full.err') },
      /model\.safetensors: cannot write, disk full/,
    );
    const full = path.join(out, 'after-full');
    expect(snapshot(full)).toEqual(before);
    expect(leftovers(full)).toEqual([]);
    const m = JSON.parse(fs.readFileSync(path.join(full, 'run.json'), 'utf8'));
    expect(m.stages.pretrain.status).toBe('done');
    expect(m.stages.finetune.status).toBe('failed');
    expect(m.stages.finetune.error).toMatch(/disk full/);

    // A read-only run folder: refused before any work (its lock is the first write), with the reason.
    const ro = /run\.(json|lock): cannot write, .* is on a read-only file system/;
    expectUserError({ code: Number(read('ro.code')), stderr: read('ro.err') }, ro);

    // Room again: the same command succeeds.
    expect(Number(read('ok.code')), read('ok.err')).toBe(0);
    const ok = JSON.parse(fs.readFileSync(path.join(out, 'after-ok', 'run.json'), 'utf8'));
    expect(ok.stages.finetune.status).toBe('done');
    expect(leftovers(path.join(out, 'after-ok'))).toEqual([]);
  }, 180_000);
});
