// Running the same computation on two tfjs backends (native kernels vs the cpu reference).
import * as tf from '@tensorflow/tfjs';
import { initBackend, precisionNote } from '../../src/engine/backend';
import { webgpuFeatures } from '../../src/engine/backend/webgpu';

/** Run f on the given backend with fresh tensors from the same data; return the values. */
export function on(backend: string, f: () => tf.Tensor): { shape: number[]; values: Float32Array } {
  const prev = tf.getBackend();
  tf.setBackend(backend);
  try {
    const t = f();
    const r = { shape: t.shape, values: t.dataSync() as Float32Array };
    t.dispose();
    return r;
  } finally {
    tf.setBackend(prev);
  }
}

/**
 * Start the webgpu backend: null where it runs, else why not (and one line `<what> skipped: why`
 * for the log, since the tests that need it skip).
 */
export async function webgpuMissing(what: string): Promise<string | null> {
  try {
    await initBackend('webgpu');
    return null;
  } catch (e) {
    const why = (e as Error).message;
    console.log(`${what} skipped: ${why}`);
    return why;
  }
}

/**
 * Start the webgpu backend in precision mixed (a device with shader-f16; lavapipe has it): null
 * where it runs so, else why not (and one line for the log).
 */
export async function mixedWebgpuMissing(what: string): Promise<string | null> {
  let why: string | null = null;
  try {
    await initBackend('webgpu', undefined, 'mixed');
    if (!webgpuFeatures().f16) why = precisionNote() ?? 'no shader-f16';
  } catch (e) {
    why = (e as Error).message;
  }
  if (why) console.log(`${what} skipped: ${why}`);
  return why;
}
