// What the engine adds to tfjs's WebGPU backend when it is selected: counters of the GPU programs
// it runs and of the tensor data it uploads (bench reports them per training step).
import * as tf from '@tensorflow/tfjs';

export interface GpuCounters {
  /** Compute programs dispatched (tfjs's and ours). */
  programs: number;
  /** Tensor data copied from the CPU to the GPU (uniform buffers are not counted). */
  uploads: number;
  /** programs by the program's class name, for profiles. */
  byProgram: Record<string, number>;
}

const counters: GpuCounters = { programs: 0, uploads: 0, byProgram: {} };

export function gpuCounters(): GpuCounters {
  return { ...counters, byProgram: { ...counters.byProgram } };
}

export function resetGpuCounters(): void {
  counters.programs = 0;
  counters.uploads = 0;
  counters.byProgram = {};
}

/** Count one program run (our own dispatches call this too). */
export function countProgram(name: string): void {
  counters.programs++;
  counters.byProgram[name] = (counters.byProgram[name] ?? 0) + 1;
}

/** The parts of tfjs-webgpu's WebGPUBackend used here. */
export interface WebGpuBackendLike {
  tensorMap: { get(dataId: object): { values: unknown; resource: unknown; shape: number[]; dtype: string } };
  runWebGPUProgram(
    program: { constructor: { name: string }; outputShape: number[] },
    ...rest: unknown[]
  ): tf.TensorInfo;
  uploadToGPU(dataId: object): void;
}

let patched = false;

export function patchWebGpuKernels(): void {
  if (patched) return;
  patched = true;
  const b = tf.backend() as unknown as WebGpuBackendLike;
  const run = b.runWebGPUProgram.bind(b);
  b.runWebGPUProgram = (program, ...rest) => {
    if (program.outputShape.every((d) => d > 0)) countProgram(program.constructor.name);
    return run(program, ...rest);
  };
  const upload = b.uploadToGPU.bind(b);
  b.uploadToGPU = (dataId) => {
    const d = b.tensorMap.get(dataId);
    if (d.resource == null && d.values != null) counters.uploads++;
    upload(dataId);
  };
}
