// scripts/gpu-check.sh's table (its `table` mode over an earlier run's $OUT), from a bench JSON
// typed as the engine writes it (BenchResult, gpu_profile made by gpuProfile) and PyTorch's lines:
// a GPU is lent rarely and briefly, so the script that reads its results must not break there.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { gpuProfile } from '../src/engine/analyze/bench-harness';
import type { PassProfile } from '../src/engine/backend/webgpu-timing';
import type { BenchResult } from '../src/engine/stages/bench';

const python = spawnSync('python3', ['--version']).status === 0;
if (!python) console.log('gpu-check table: no python3 here, not checked');

/** A profile: two matmuls (1.07 GFLOP each, in 1000 and 400 us), a LayerNorm (300 us); the step 1800 us. */
function profile(scale: number): PassProfile {
  const mm = 2 * 4096 * 128 * 512 * 2;
  return {
    deviceUs: 1800 * scale,
    runs: 3,
    programs: [
      {
        name: 'matmul_64x64x16-4x4',
        detail: '4096x128x512 x2',
        flops: mm,
        index: 0,
        workgroups: 256,
        us: 1000 * scale,
      },
      { name: 'layernorm_res', detail: '4096x128', flops: 0, index: 1, workgroups: 512, us: 300 * scale },
      { name: 'matmul_64x64x16-4x4', detail: '4096x128x512 x2', flops: mm, index: 2, workgroups: 256, us: 400 * scale },
    ],
  };
}

describe.skipIf(!python)('gpu-check.sh table', () => {
  it('prints the ratios, the targets and each shape profile (TFLOP/s, share of the timed step)', () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'bp-gpu-check-'));
    const bench: BenchResult = {
      backend: 'webgpu (NVIDIA H200)',
      webgpu_matmul: 'auto: NT:small 64x64x16-4x4',
      batch: 32,
      seq: 128,
      steps: 20,
      shapes: [
        {
          name: 'L2-H128',
          layers: 2,
          hidden: 128,
          heads: 2,
          ffn: 512,
          train_tokens_per_s: 800000,
          infer_tokens_per_s: 2000000,
          ms_per_train_batch: 4,
          ms_per_infer_batch: 1,
          peak_rss_mb: 500,
          gpu_programs_per_train_step: 122,
          gpu_uploads_per_train_step: 3,
          gpu_bind_groups_per_train_step: 0,
          gpu_buffers_created_per_train_step: 0,
          gpu_submits_per_train_step: 1,
          host_ms_per_train_step: 0.5,
          gpu_replayed_train_steps: 1,
          gpu_peak_mib: 116,
          gpu_profile: gpuProfile(profile(1)),
          gpu_infer_profile: gpuProfile(profile(0.25)),
        },
      ],
      pruned: {
        name: 'L2-H128',
        heads_kept: 1,
        ffn_kept: 128,
        unpruned_ms_per_infer_batch: 1,
        pruned_ms_per_infer_batch: 0.5,
        speedup: 2,
      },
    };
    // as the engine prints it: Dawn's lines may come first
    fs.writeFileSync(path.join(out, 'bench-L2-H128.json'), `Warning: a Dawn line\n${JSON.stringify(bench, null, 2)}\n`);
    fs.writeFileSync(
      path.join(out, 'torch.txt'),
      'L2-H128 A2 I512 B32 T128: train_tokens_per_s=772422.0 infer_tokens_per_s=4067300.0\n',
    );
    const r = spawnSync('bash', ['scripts/gpu-check.sh', 'table'], {
      encoding: 'utf8',
      env: { ...process.env, OUT: out, GPU_CHECK_SHAPES: 'L2-H128' },
    });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    const t = r.stdout;
    expect(t).toMatch(/^L2-H128 +800000 +2000000 +772422 +4067300 +1\.04x +0\.49x +122 /m);
    expect(t).toContain('L2-H128 train >= 1.0x PyTorch: met (1.04x)');
    expect(t).toContain('L2-H128 infer >= 1.0x PyTorch: NOT met (0.49x)');
    // the profiles: device time and its share of the timed step, the kinds with TFLOP/s, the slowest
    expect(t).toContain(
      'L2-H128 training step: 1800 us on the device (45% of the timed 4.00 ms), its 3 programs alone 1700 us;',
    );
    expect(t).toContain('matmul_64x64x16-4x4 82% (2, 1400 us, wg 256-256, 1.53 TFLOP/s)');
    expect(t).toContain('layernorm_res 18% (1, 300 us, wg 512-512)');
    expect(t).toContain('slowest: matmul_64x64x16-4x4#0 [4096x128x512 x2] 1000 us (wg 256, 1.07 TFLOP/s)');
    expect(t).toContain('L2-H128 inference batch: 450 us on the device (45% of the timed 1.00 ms)');
    const summary = JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8'));
    expect(summary.shapes[0].train_ratio).toBeCloseTo(800000 / 772422, 6);
  });
});
