// The recorded step (backend/webgpu-record.ts) as model/ and train/ reach it: the ops layer is
// their only way down to the kernels. A recorder exists only where the webgpu ops run
// (recordingBackend() and inferenceRecorder() are null elsewhere), so host code never records.
export {
  addHostMs,
  beginStepScalars,
  deviceCounters,
  inferenceRecorder,
  noteUnrecorded,
  Recorder,
  recordingBackend,
  resetDeviceCounters,
  SEED0,
  SLOT,
} from '../backend/webgpu-record';
