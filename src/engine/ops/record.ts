// The recorded step (backend/webgpu-record.ts) as model/ and train/ reach it: the ops layer is
// their only way down to the kernels. A recorder exists only where the webgpu ops run
// (recordingBackend() and inferenceRecorder() are null elsewhere), so host code never records.
import type * as tf from '@tensorflow/tfjs';
import type { Recorder } from '../backend/webgpu-record';
import { ops } from './index';
export {
  addHostMs,
  beginStepScalars,
  deviceCounters,
  inferenceRecorder,
  noteUnrecorded,
  passRecorder,
  Recorder,
  recordingBackend,
  recordingOn,
  replayPadding,
  resetDeviceCounters,
  SEED0,
  SLOT,
} from '../backend/webgpu-record';

/**
 * One pass of fn over a batch that needs no per-step scalars (inference, importance scoring):
 * replayed where rec holds a recording of the batch's key, recorded the second time the key is
 * seen, else run op by op (rec null: off webgpu). fn returns one tensor (made in its own tidy);
 * resolves once the pass is queued, with that tensor's values to come. Every read-back goes
 * through ops().check(), so a GPU error stops the stage at the next batch.
 */
export async function queuePass(
  rec: { recorder: Recorder; modelKey: string } | null,
  batch: object,
  fn: () => tf.Tensor,
): Promise<{ result: Promise<Float32Array> }> {
  const read = async (t: tf.Tensor) => {
    const data = (await t.data()) as Float32Array;
    t.dispose();
    ops().check();
    return data;
  };
  if (rec) {
    const key = rec.recorder.key(rec.modelKey, batch);
    const plan = rec.recorder.plan(key);
    if (plan.kind === 'replay') {
      const r = await rec.recorder.replay(plan.rec, batch, null);
      return {
        result: r.result.then((data) => {
          ops().check();
          return data;
        }),
      };
    }
    if (plan.kind === 'record')
      return { result: Promise.resolve(await read((await rec.recorder.record(key, batch, fn)).out)) };
    return { result: Promise.resolve(await read(await rec.recorder.run(fn))) };
  }
  return { result: Promise.resolve(await read(fn())) };
}
