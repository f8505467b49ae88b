// The kernels model/ and train/ run on, chosen once: initBackend (backend/index.ts) installs the
// set that fits the backend it loaded (useOps), and every caller asks ops() without knowing which
// backend is active. Each op's implementations sit side by side: host.ts (tfjs ops, for the cpu,
// wasm and tensorflow backends) and webgpu.ts (the fused WebGPU programs of backend/webgpu-*.ts).
// Before any backend is loaded the host set is in place.
import { hostOps } from './host';
import type { Ops } from './types';

export type { AdamWHyper, AdamWItem, AttentionDims, Dense, DropSpec, LossScaleState, Ops } from './types';

let current: Ops = hostOps;

/** The set in use. */
export function ops(): Ops {
  return current;
}

/** Install a set: initBackend's, once it knows the backend. */
export function useOps(set: Ops): void {
  current = set;
}
