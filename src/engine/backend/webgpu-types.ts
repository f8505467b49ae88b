// The parts of tfjs-webgpu's WebGPUBackend that our kernels and the step recorder use (not a public
// API: package.json pins @tensorflow/tfjs-backend-webgpu 4.22.0). A module of its own, so that
// webgpu-kernels.ts and webgpu-record.ts, which use each other's values, share types without a circle.
import type * as tf from '@tensorflow/tfjs';

/* eslint-disable @typescript-eslint/no-explicit-any -- WebGPU's types are not in our tsconfig */
type GPUBuffer = any;

export interface TensorData {
  values: ArrayLike<number> | null;
  resource: GPUBuffer | null;
  external?: boolean;
  shape: number[];
  dtype: string;
  refCount: number;
}

/** The parts of tfjs-webgpu's WebGPUBackend used here. */
export interface WebGpuBackendLike {
  device: any;
  queue: any;
  commandEncoder: any;
  computePassEncoder: any;
  dispatchCountInPass: number;
  commandQueueOwnedIds: WeakSet<object>;
  uniformPendingDisposal: GPUBuffer[];
  bufferManager: {
    acquireBuffer(size: number, usage: number, mapped?: boolean, reuse?: boolean): GPUBuffer;
    /** Bytes of every buffer tfjs has made and not destroyed (its pool's free ones included). */
    numBytesAllocated?: number;
  };
  tensorMap: { get(dataId: object): TensorData; has(dataId: object): boolean };
  runWebGPUProgram(
    program: { constructor: { name: string }; outputShape: number[] },
    inputs: tf.TensorInfo[],
    dtype: tf.DataType,
    uniforms?: { type: string; data: number[] }[],
    output?: tf.TensorInfo,
  ): tf.TensorInfo;
  uploadToGPU(dataId: object): void;
  ensureCommandEncoderReady(): void;
  endComputePassEncoder(): void;
  submitQueue(): void;
}
