// Backend selection. The engine runs on whatever tfjs backend is fastest where it runs:
//   webgpu (a hardware adapter) > tensorflow-gpu (@tensorflow/tfjs-node-gpu) >
//   tensorflow (@tensorflow/tfjs-node) > wasm (+ the native OpenBLAS kernels where built) > cpu.
// webgpu and the tfjs-node bindings are optional dependencies: where their install failed (no
// internet for the libtensorflow download, no Vulkan driver) they simply are not found and `auto`
// moves on. A software WebGPU adapter (lavapipe) is used only when webgpu is asked for by name.
import { createRequire } from 'node:module';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-cpu';
import { patchWasmKernels, usesNativeMatMul } from './wasm-kernels';
import { UserError } from '../errors';
import { loadNative } from './native';
import { nativeOps } from './native-ops';
import {
  measuredChoice,
  ModelSize,
  readMatmulTuning,
  readSpeeds,
  recordMatmulTuning,
  SpeedEntry,
  speedsFile,
} from './speeds';
import { hardwareWebGpuAdapter, Precision, registerWebGpu, webgpuAdapter, webgpuPrecision } from './webgpu';
import { patchWebGpuKernels } from './webgpu-kernels';
import { setMatmulPrecision, tuneMatmul, tuneMixed, TuningStore } from './webgpu-matmul';
import { attentionProduct } from './webgpu-ops';
import { useOps } from '../ops';
import { hostOps } from '../ops/host';
import { webgpuOps } from '../ops/webgpu';

export type BackendName = 'auto' | 'webgpu' | 'tensorflow-gpu' | 'tensorflow' | 'wasm' | 'cpu';
export { PRECISIONS, type Precision } from './webgpu';
export const BACKEND_NAMES: BackendName[] = ['auto', 'webgpu', 'tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'];

const req = createRequire(typeof __filename === 'string' ? __filename : path.join(process.cwd(), 'x.js'));

/** The tfjs registry name each of ours maps to. */
const TF_NAME: Record<Exclude<BackendName, 'auto'>, string> = {
  webgpu: 'webgpu',
  'tensorflow-gpu': 'tensorflow',
  tensorflow: 'tensorflow',
  wasm: 'wasm',
  cpu: 'cpu',
};

let active: Exclude<BackendName, 'auto'> | null = null;
/** Why webgpu was not taken, for the error of an explicit --backend webgpu. */
let webgpuWhyNot = 'no WebGPU adapter';

/**
 * The active backend as the CLI and run.json show it: 'wasm+openblas' when the wasm backend's
 * matmul runs on the native OpenBLAS addon (see native.ts), else the backend's name.
 */
export function backendLabel(): string {
  if (!active) return 'none';
  if (active === 'webgpu') return `webgpu (${webgpuAdapter()?.name ?? 'unknown adapter'})`;
  return active === 'wasm' && usesNativeMatMul() ? 'wasm+openblas' : active;
}

function tryRequire(mod: string): boolean {
  try {
    req(mod);
    return true;
  } catch {
    return false;
  }
}

async function load(name: Exclude<BackendName, 'auto'>, explicit: boolean, precision: Precision): Promise<boolean> {
  switch (name) {
    case 'webgpu': {
      const r = await registerWebGpu({ allowSoftware: explicit, precision });
      if ('reason' in r) {
        webgpuWhyNot = r.reason;
        return false;
      }
      break;
    }
    case 'tensorflow-gpu':
      if (!tryRequire('@tensorflow/tfjs-node-gpu')) return false;
      break;
    case 'tensorflow':
      if (!tryRequire('@tensorflow/tfjs-node')) return false;
      break;
    case 'wasm': {
      if (!tryRequire('@tensorflow/tfjs-backend-wasm')) return false;
      const wasm = req('@tensorflow/tfjs-backend-wasm');
      // In a bundle __dirname is the bundle's folder: point the loader at the package's .wasm files.
      const dir = path.dirname(req.resolve('@tensorflow/tfjs-backend-wasm/package.json'));
      wasm.setWasmPaths(path.join(dir, 'dist') + path.sep);
      break;
    }
    case 'cpu':
      break;
  }
  try {
    if (!(await tf.setBackend(TF_NAME[name]))) return false;
    await tf.ready();
  } catch {
    return false;
  }
  if (name === 'wasm') patchWasmKernels();
  if (name === 'webgpu') {
    patchWebGpuKernels();
    // The matmuls for this adapter: kept from an earlier measurement, else measured now (once).
    const a = webgpuAdapter();
    if (a) await tuneMatmul(a, attentionProduct, MATMUL_STORE, (m) => (matmulNoteText = m));
  }
  // The kernels model/ and train/ call, chosen here once (ops/index.ts).
  const addon = name === 'wasm' ? loadNative() : null;
  useOps(name === 'webgpu' ? webgpuOps : addon ? nativeOps(addon) : hostOps);
  // The cpu backend greets its first use in Node with a banner recommending tfjs-node; the CLI
  // already prints the backend in use and the README says how to get a faster one.
  if (name === 'cpu') (tf.backend() as unknown as { firstUse?: boolean }).firstUse = false;
  return true;
}

/** The webgpu matmul's measured choices live in the speeds file (its folder as it is when asked). */
export const MATMUL_STORE: TuningStore = {
  read: (adapter, version) => readMatmulTuning(adapter, version),
  write: (t) => recordMatmulTuning(t),
};

/** The line of the webgpu matmul's measurement, where this process made one (webgpu-matmul.ts). */
let matmulNoteText: string | null = null;

export function matmulNote(): string | null {
  return matmulNoteText;
}

let precisionInUse: Precision = 'fp32';
let precisionNoteText: string | null = null;

/** The precision the stage runs in: mixed only on webgpu with shader-f16 (else fp32). */
export function activePrecision(): Precision {
  return precisionInUse;
}

/** Why precision mixed was asked for and the stage runs fp32 (one line), else null. */
export function precisionNote(): string | null {
  return precisionNoteText;
}

/**
 * Run in precision p where the active backend can: mixed needs webgpu and a device made for it
 * with shader-f16 (webgpu.ts); else fp32, and precisionNote says why.
 */
async function applyPrecision(p: Precision): Promise<void> {
  precisionNoteText = null;
  if (active !== 'webgpu') {
    setMatmulPrecision('fp32');
    precisionInUse = 'fp32';
    if (p === 'mixed')
      precisionNoteText = `precision mixed needs the webgpu backend; the stage runs in fp32 on ${backendLabel()}`;
    return;
  }
  const r = webgpuPrecision(p);
  setMatmulPrecision(r.precision);
  precisionInUse = r.precision;
  precisionNoteText = r.note;
  // mixed, where subgroup matrices are offered: they against the f16 kernel (kept, else measured once)
  const a = webgpuAdapter();
  if (r.precision === 'mixed' && a)
    await tuneMixed(
      a,
      attentionProduct,
      MATMUL_STORE,
      (m) => (matmulNoteText = [matmulNoteText, m].filter(Boolean).join('\n')),
    );
}

/** What `auto` is about to run, so it can follow bench's measurements (speeds.ts). */
export interface AutoHint {
  size: ModelSize;
  kind: 'train' | 'infer';
}

/** Why `auto` took or left out webgpu (one line for the log), when it had a choice to make. */
let autoNote: string | null = null;

export function autoChoiceNote(): string | null {
  return autoNote;
}

/**
 * Whether `auto` should leave webgpu out: where a hardware adapter is there (gpu) and bench
 * measured the CPU path (cpuLabel: wasm, with OpenBLAS where it loads) faster than it for a model
 * this size. `note` says why, for the log.
 */
export function autoDecision(
  gpu: { name: string } | { reason: string },
  cpuLabel: string,
  speeds: { entries: SpeedEntry[]; problem?: string },
  hint: AutoHint,
  cpu?: string,
): { leaveOutWebgpu: boolean; note: string | null } {
  if ('reason' in gpu) return { leaveOutWebgpu: false, note: null };
  const gpuLabel = `webgpu (${gpu.name})`;
  const c = measuredChoice(speeds.entries, [gpuLabel, cpuLabel], hint.size, hint.kind, cpu);
  if (c) {
    const leaveOutWebgpu = c.backend === cpuLabel;
    const note = leaveOutWebgpu ? `auto: ${gpuLabel} left out: ${cpuLabel} ${c.why}` : `auto: ${gpuLabel}, ${c.why}`;
    return { leaveOutWebgpu, note };
  }
  return {
    leaveOutWebgpu: false,
    note:
      (speeds.problem ? `auto: ${speeds.problem}. ` : '') +
      `auto: ${gpuLabel}; whether ${cpuLabel} is faster for a model this size is not measured here ` +
      `(bench --backend webgpu and bench --backend wasm with --shapes near it record that in ${speedsFile()})`,
  };
}

/**
 * Select and initialise a backend. `auto` takes the fastest one that loads: where a hardware GPU
 * and a measurement of both are there (hint: the model the stage runs), the one measured faster.
 * The hint, the CPU path's label and the speeds file are looked at only where there is a hardware
 * adapter to weigh. An explicit name that cannot load is an error naming what is missing.
 * precision: mixed where the backend can (activePrecision, precisionNote), else fp32.
 */
export async function initBackend(
  name: BackendName = 'auto',
  hint?: () => AutoHint | undefined,
  precision: Precision = 'fp32',
): Promise<Exclude<BackendName, 'auto'>> {
  if (active && (name === 'auto' || name === active)) {
    await applyPrecision(precision);
    return active;
  }
  let order: Exclude<BackendName, 'auto'>[] =
    name === 'auto' ? ['webgpu', 'tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'] : [name];
  const gpu = name === 'auto' && hint ? hardwareWebGpuAdapter() : null;
  const h = gpu && 'name' in gpu ? hint?.() : undefined;
  if (gpu && h) {
    const d = autoDecision(gpu, loadNative() ? 'wasm+openblas' : 'wasm', readSpeeds(), h);
    autoNote = d.note;
    if (d.leaveOutWebgpu) order = order.filter((n) => n !== 'webgpu');
  }
  for (const n of order) {
    if (await load(n, name !== 'auto', precision)) {
      active = n;
      await applyPrecision(precision);
      return n;
    }
  }
  const missing: Record<string, string> = {
    webgpu: webgpuWhyNot,
    'tensorflow-gpu': 'install @tensorflow/tfjs-node-gpu (needs CUDA and internet at install time)',
    tensorflow: 'install @tensorflow/tfjs-node (needs internet at install time)',
    wasm: 'reinstall @tensorflow/tfjs-backend-wasm',
    cpu: 'reinstall @tensorflow/tfjs-backend-cpu',
  };
  throw new UserError(`backend '${name}' is not available here: ${missing[name] ?? ''}`);
}
