// The WebGPU backend: tfjs-backend-webgpu on Dawn's Node bindings (the `webgpu` npm package's
// prebuilt dawn.node). Both packages are optional dependencies; where either is missing, or no
// adapter is found, the backend is simply not available and `auto` moves on.
//
// tfjs-backend-webgpu registers itself at import only where `navigator.gpu` exists (a browser).
// Node has no such global, so we make the adapter and device ourselves and register the backend
// with its exported WebGPUBackend(device, adapterInfo). The one browser global it checks in its
// constructor (navigator.gpu) is set only for that call and removed again.
//
//   BERT_PRUNER_DAWN=/abs/dawn.node   load this dawn.node instead of the package's own
//   BERT_PRUNER_WEBGPU_ADAPTER=name   the adapter to use where there are several (a part of its
//                                     name, e.g. "NVIDIA"; the error lists the ones there are)
//
// Precision mixed (--precision mixed) asks Dawn for more than the default: the instance toggles
// that let it offer f16 and subgroup matrices on NVIDIA's drivers (MIXED_TOGGLES; only in that
// mode), and the device features `shader-f16` (required for the f16 matmul) and
// `chromium-experimental-subgroup-matrix` with `subgroups` (where offered: the sg matmul, webgpu-sgmat.ts).
//
// dawn.node is loaded only from the engine's own package folder or that variable (trusted-paths.ts).
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { UserError } from '../errors';
import { dawnPollMode, pollDawnByTimer } from './dawn-poll';
import { trustedCodePath } from './trusted-paths';
import type { SgConfig } from './webgpu-sgmat';

const req = createRequire(typeof __filename === 'string' ? __filename : path.join(process.cwd(), 'x.js'));

/** fp32 throughout, or matmul inputs in f16 with f32 accumulation (docs/gpu.md, "Mixed precision"). */
export type Precision = 'fp32' | 'mixed';
export const PRECISIONS: Precision[] = ['fp32', 'mixed'];

/**
 * The Dawn instance toggles mixed precision asks for: the f16 feature on NVIDIA drivers Dawn
 * gates it on (older than 615), and the unsafe APIs the subgroup-matrix feature sits behind.
 */
export const MIXED_TOGGLES = 'enable-dawn-features=vulkan_enable_f16_on_nvidia,allow_unsafe_apis';

/**
 * Always: timestamps unrounded. Dawn rounds them to 65.536 us by default (a browser's guard against
 * timing attacks, not a local tool's concern), which would hide every program of a small model's
 * step in bench's profile (webgpu-timing.ts).
 */
export const TIMESTAMP_TOGGLE = 'disable-dawn-features=timestamp_quantization';

/** The adapter the backend runs on, as run.json and the status bar show it. */
export interface WebGpuAdapter {
  /** e.g. "NVIDIA H200" or "llvmpipe (LLVM 19.1.7, 256 bits)". */
  name: string;
  /** A CPU implementation (lavapipe / llvmpipe, SwiftShader): used only when asked for by name. */
  software: boolean;
}

type Gpu = {
  requestAdapter(o?: object): Promise<GpuAdapter | null>;
};
/** What Dawn tells of an adapter (GPUAdapterInfo). */
type AdapterInfo = {
  vendor: string;
  device: string;
  description: string;
  isFallbackAdapter?: boolean;
  /** Where the adapter offers chromium-experimental-subgroup-matrix (Dawn). */
  subgroupMatrixConfigs?: Iterable<SubgroupMatrixConfig>;
  subgroupMinSize?: number;
  subgroupMaxSize?: number;
};
type SubgroupMatrixConfig = { componentType: string; resultComponentType: string; M: number; N: number; K: number };
type GpuAdapter = {
  info?: AdapterInfo;
  features: Set<string>;
  limits: Record<string, number>;
  requestDevice(d?: object): Promise<GpuDevice>;
};
export type GpuDevice = {
  limits: Record<string, number>;
  lost: Promise<{ reason: string; message: string }>;
  addEventListener?(type: string, f: (e: { error: { message: string } }) => void): void;
};

let dawnWhere: { file: string } | { file: null; reason: string } | null = null;

/**
 * The dawn.node file: the `webgpu` package's prebuilt binary for this platform, in our own folder.
 * Looked for once per process (its warning, if any, said once).
 */
function dawnPath(): { file: string } | { file: null; reason: string } {
  dawnWhere ??= findDawn();
  return dawnWhere;
}

function findDawn(): { file: string } | { file: null; reason: string } {
  const arch = process.platform === 'darwin' ? 'universal' : process.arch;
  const rel = path.join('node_modules', 'webgpu', 'dist', `${process.platform}-${arch}`, 'dawn.node');
  const where = trustedCodePath(rel, { envName: 'BERT_PRUNER_DAWN', envValue: process.env.BERT_PRUNER_DAWN });
  if (where.file === null) {
    if (where.warning) process.stderr.write(`bert-pruner: warning: ${where.warning}\n`);
    const reason = where.expected
      ? `the optional package 'webgpu' (Dawn) has no ${process.platform}-${arch} binary installed`
      : where.reason;
    return { file: null, reason };
  }
  return { file: where.file };
}

const softwareOnly = (name: string) => ({
  reason: `the only WebGPU adapter is a software one (${name}); choose --backend webgpu to use it`,
});

const NO_ADAPTER = 'no WebGPU adapter found (no Vulkan, Metal or D3D12 driver?)';

const SOFTWARE = /llvmpipe|lavapipe|swiftshader|software/i;

/** Whether an adapter is a CPU implementation of WebGPU (never picked by `auto`). */
function isSoftwareAdapter(info: AdapterInfo): boolean {
  return !!info.isFallbackAdapter || SOFTWARE.test(`${info.description ?? ''} ${info.device ?? ''}`);
}

let adapterInUse: WebGpuAdapter | null = null;
/** The device's features that mixed precision uses (requested only in that mode). */
const NO_SUBGROUP_MATRIX = { sgConfigs: [], subgroupSize: 0 };
let featuresInUse: DeviceFeatures = { f16: false, subgroupMatrix: false, ...NO_SUBGROUP_MATRIX };

export interface DeviceFeatures {
  f16: boolean;
  subgroupMatrix: boolean;
  /** The subgroup-matrix configurations with f16 operands and an f32 result (M x N, K deep). */
  sgConfigs: SgConfig[];
  /** The subgroup size where every subgroup has the same (min = max), else 0 (no sg kernel then). */
  subgroupSize: number;
}
/** The precision the device was made for; why mixed was not possible, where it was asked for. */
let madeFor: Precision = 'fp32';
/** Dawn's instance lives as long as this reference (its device dies with it). */
let instance: Gpu | null = null;
let deviceInUse: GpuDevice | null = null;
let lostReason: string | null = null;

export function webgpuAdapter(): WebGpuAdapter | null {
  return adapterInUse;
}

export function webgpuDevice(): GpuDevice | null {
  return instance && deviceInUse;
}

/** Whether the device has shader-f16 (and subgroup matrices): only where made for mixed precision. */
export function webgpuFeatures(): DeviceFeatures {
  return { ...featuresInUse };
}

/** An adapter's f16 -> f32 subgroup-matrix configurations, and its subgroup size where fixed. */
export function subgroupMatrixOffer(info: AdapterInfo): Pick<DeviceFeatures, 'sgConfigs' | 'subgroupSize'> {
  const sgConfigs = [...(info.subgroupMatrixConfigs ?? [])]
    .filter((c) => c.componentType === 'f16' && c.resultComponentType === 'f32')
    .map((c) => ({ M: c.M, N: c.N, K: c.K }));
  const max = info.subgroupMaxSize ?? 0;
  return { sgConfigs, subgroupSize: max > 0 && (info.subgroupMinSize ?? max) === max ? max : 0 };
}

/**
 * Whether the device runs precision `p`: fp32 always; mixed where it was made for it with
 * shader-f16. Else why not, one line (the stage then runs fp32).
 */
export function webgpuPrecision(p: Precision): { precision: Precision; note: string | null } {
  return precisionOn(p, { f16: featuresInUse.f16, madeFor, name: adapterInUse?.name ?? 'the adapter' });
}

/** webgpuPrecision on a device made for `madeFor` on adapter `name`, with shader-f16 or not. */
export function precisionOn(
  p: Precision,
  device: { f16: boolean; madeFor: Precision; name: string },
): { precision: Precision; note: string | null } {
  if (p === 'fp32') return { precision: 'fp32', note: null };
  if (device.f16) return { precision: 'mixed', note: null };
  const why =
    device.madeFor !== 'mixed'
      ? `this engine process started the webgpu device in fp32 (${device.name})`
      : `${device.name} offers no shader-f16`;
  return { precision: 'fp32', note: `precision mixed: ${why}; the stage runs in fp32` };
}

/**
 * Throw (one line, no trace) once the GPU reported an error: out of memory, a lost device. What
 * was computed since is not to be trusted; the stage stops and can be resumed from its last
 * checkpoint. Called after every read-back (the training step's loss, each inference batch).
 */
export function checkWebGpu(): void {
  if (!lostReason) return;
  const hint = 'a training stage resumes from its last epoch with --resume; a smaller batch_size needs less GPU memory';
  throw new UserError(`${lostReason}; stopped (${hint})`);
}

/** For tests: as if the device had reported this error. */
export function simulateWebGpuError(reason: string): void {
  lostReason = reason;
}

/**
 * Dawn's instance flags: the adapter the user named (BERT_PRUNER_WEBGPU_ADAPTER), if any; exact
 * timestamps (TIMESTAMP_TOGGLE); in mixed precision only, the toggles that offer f16 and subgroup
 * matrices (MIXED_TOGGLES).
 */
export function dawnFlags(precision: Precision = 'fp32', env: NodeJS.ProcessEnv = process.env): string[] {
  const wanted = env.BERT_PRUNER_WEBGPU_ADAPTER;
  return [
    ...(wanted ? [`adapter=${wanted}`] : []),
    TIMESTAMP_TOGGLE,
    ...(precision === 'mixed' ? [MIXED_TOGGLES] : []),
  ];
}

/**
 * The device features a precision asks for, of those the adapter offers: none in fp32; in mixed
 * shader-f16, and chromium-experimental-subgroup-matrix with the subgroups feature it needs, where offered.
 */
export function precisionFeatures(precision: Precision, offered: Set<string>): string[] {
  if (precision !== 'mixed') return [];
  // subgroup matrices need the subgroups feature too (their workgroup size is checked against it)
  const sg = offered.has('chromium-experimental-subgroup-matrix') && offered.has('subgroups');
  return [
    ...(offered.has('shader-f16') ? ['shader-f16'] : []),
    ...(sg ? ['subgroups', 'chromium-experimental-subgroup-matrix'] : []),
  ];
}

const PROBE_MARK = 'bert-pruner-webgpu-probe ';

/**
 * Which adapter Dawn would give, asked in a child process: Dawn prints warnings on stderr while it
 * looks for Vulkan drivers (none found, a software one's reduced limits), and `auto` must not greet
 * every user without a GPU with them. Only where a hardware adapter is there does the engine load
 * Dawn itself. About a third of a second, once per engine start, in `auto` only.
 */
function probeWebGpu(dawnFile: string): { name: string; software: boolean } | { reason: string } {
  const script = `
const { create } = require(${JSON.stringify(dawnFile)});
const say = (o) => {
  process.stdout.write(${JSON.stringify(PROBE_MARK)} + JSON.stringify(o) + '\\n');
  process.exit(0);
};
(async () => {
  const a = await create(${JSON.stringify(dawnFlags())}).requestAdapter({ powerPreference: 'high-performance' });
  if (!a) return say({ reason: ${JSON.stringify(NO_ADAPTER)} });
  const i = a.info;
  const { vendor, device, description, isFallbackAdapter } = i;
  say({ info: { vendor, device, description, isFallbackAdapter } });
})().catch((e) => say({ reason: String(e && e.message || e).trim().replace(/\\s*\\n\\s*/g, '; ') }));`;
  const r = spawnSync(process.execPath, ['-e', script], {
    encoding: 'utf8',
    timeout: 30_000,
    cwd: path.dirname(dawnFile), // a folder of ours: nothing is taken from the workspace
    // VS Code runs the engine with its Electron binary in node mode; the child must be in it too.
    env: { ...process.env, ELECTRON_RUN_AS_NODE: '1' },
  });
  const line = (r.stdout ?? '').split('\n').find((l) => l.startsWith(PROBE_MARK));
  if (!line) return { reason: `the WebGPU probe failed (${r.error?.message ?? `exit ${r.status ?? r.signal}`})` };
  const o = JSON.parse(line.slice(PROBE_MARK.length)) as { reason?: string; info?: AdapterInfo };
  if (!o.info) return { reason: o.reason ?? NO_ADAPTER };
  return { name: adapterName(o.info), software: isSoftwareAdapter(o.info) };
}

let probed: { name: string; software: boolean } | { reason: string } | null = null;

/**
 * The hardware WebGPU adapter `auto` would run on, asked once per process in a child (probeWebGpu):
 * its name (as the backend label shows it), or why there is none (no package, no adapter, only a
 * software one). Loads nothing into this process.
 */
export function hardwareWebGpuAdapter(): { name: string } | { reason: string } {
  if (!probed) {
    const dawn = dawnPath();
    probed = dawn.file === null ? { reason: dawn.reason } : probeWebGpu(dawn.file);
  }
  if ('reason' in probed) return probed;
  return probed.software ? softwareOnly(probed.name) : { name: probed.name };
}

function adapterName(info: AdapterInfo): string {
  return info.description || info.device || info.vendor || 'unknown adapter';
}

/**
 * Make the Dawn instance, adapter and device, and register tfjs's 'webgpu' backend on them.
 * allowSoftware: false (auto) refuses a CPU adapter, and looks first in a child process
 * (probeWebGpu). Returns why not, or the adapter.
 */
export async function registerWebGpu(o: {
  allowSoftware: boolean;
  precision?: Precision;
}): Promise<WebGpuAdapter | { reason: string }> {
  if (adapterInUse) return adapterInUse;
  let backendMod: { WebGPUBackend: new (device: unknown, info: unknown) => tf.KernelBackend };
  try {
    backendMod = req('@tensorflow/tfjs-backend-webgpu');
  } catch {
    return { reason: "the optional package '@tensorflow/tfjs-backend-webgpu' is not installed" };
  }
  const dawn = dawnPath();
  if (dawn.file === null) return { reason: dawn.reason };
  if (!o.allowSoftware) {
    const probe = hardwareWebGpuAdapter();
    if ('reason' in probe) return probe;
  }
  let create: (flags: string[]) => Gpu;
  let globals: Record<string, unknown>;
  try {
    ({ create, globals } = req(dawn.file) as { create: typeof create; globals: Record<string, unknown> });
  } catch (e) {
    return { reason: `${dawn.file} did not load: ${(e as Error).message.split('\n')[0]}` };
  }
  // tfjs-webgpu uses the WebGPU enums and classes as globals (GPUBufferUsage, GPUMapMode, GPUBuffer).
  for (const [k, v] of Object.entries(globals)) if (!(k in globalThis)) (globalThis as Record<string, unknown>)[k] = v;
  const wanted = process.env.BERT_PRUNER_WEBGPU_ADAPTER;
  let adapter: GpuAdapter | null;
  let gpu: Gpu;
  try {
    gpu = create(dawnFlags(o.precision));
    adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  } catch (e) {
    // Dawn lists the adapters there are when the one named is not among them.
    const msg = (e as Error).message.trim().replace(/\s*\n\s*/g, '; ');
    return { reason: wanted ? `BERT_PRUNER_WEBGPU_ADAPTER='${wanted}': ${msg}` : msg };
  }
  if (!adapter) return { reason: NO_ADAPTER };
  const info: AdapterInfo = adapter.info ?? { vendor: '', device: '', description: '' };
  const name = adapterName(info);
  const software = isSoftwareAdapter(info);
  if (software && !o.allowSoftware) return softwareOnly(name);
  if (dawnPollMode(software) === 'timer') pollDawnByTimer();
  const lim = adapter.limits;
  const extra = precisionFeatures(o.precision ?? 'fp32', adapter.features);
  let device: GpuDevice;
  try {
    device = await adapter.requestDevice({
      requiredFeatures: [...(adapter.features.has('timestamp-query') ? ['timestamp-query'] : []), ...extra],
      requiredLimits: {
        maxComputeWorkgroupStorageSize: lim.maxComputeWorkgroupStorageSize,
        maxComputeWorkgroupsPerDimension: lim.maxComputeWorkgroupsPerDimension,
        maxStorageBufferBindingSize: lim.maxStorageBufferBindingSize,
        maxBufferSize: lim.maxBufferSize,
        maxComputeWorkgroupSizeX: lim.maxComputeWorkgroupSizeX,
        maxComputeInvocationsPerWorkgroup: lim.maxComputeInvocationsPerWorkgroup,
        // Our fused kernels bind more buffers than the default 8 where the adapter allows it.
        maxStorageBuffersPerShaderStage: lim.maxStorageBuffersPerShaderStage,
      },
    });
  } catch (e) {
    return { reason: `${name}: requestDevice failed: ${(e as Error).message.split('\n')[0]}` };
  }
  device.lost.then((l) => {
    if (!lostReason) lostReason = `the GPU device was lost (${l.reason || 'unknown'}: ${l.message || 'no message'})`;
  });
  device.addEventListener?.('uncapturederror', (e) => {
    const m = e.error.message.trim().split('\n')[0];
    const oom = e.error.constructor?.name === 'GPUOutOfMemoryError' || /out of memory/i.test(m);
    if (!lostReason) lostReason = oom ? `out of GPU memory (${name}): ${m}` : `GPU error (${name}): ${m}`;
  });
  const g = globalThis as { navigator?: { gpu?: unknown } };
  const hadNavigator = 'navigator' in g;
  const oldGpu = g.navigator?.gpu;
  try {
    if (!hadNavigator) Object.defineProperty(g, 'navigator', { value: {}, configurable: true, writable: true });
    g.navigator!.gpu = gpu;
    const backend = new backendMod.WebGPUBackend(device, info);
    tf.registerBackend('webgpu', () => backend, 0);
  } finally {
    if (!hadNavigator) delete g.navigator;
    else g.navigator!.gpu = oldGpu;
  }
  instance = gpu;
  deviceInUse = device;
  adapterInUse = { name, software };
  madeFor = o.precision ?? 'fp32';
  const subgroupMatrix = extra.includes('chromium-experimental-subgroup-matrix');
  featuresInUse = {
    f16: extra.includes('shader-f16'),
    subgroupMatrix,
    ...(subgroupMatrix ? subgroupMatrixOffer(info) : NO_SUBGROUP_MATRIX),
  };
  return adapterInUse;
}
