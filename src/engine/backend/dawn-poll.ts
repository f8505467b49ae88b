// How the main thread waits for the GPU. Dawn's Node bindings (the `webgpu` package) learn that GPU
// work has finished (a buffer mapped for reading, onSubmittedWorkDone) by polling their instance:
// while any such promise is pending, each poll schedules the next through the global setImmediate,
// so the main thread spins a whole core while it waits (on lavapipe about 50,000 polls a second,
// each making a new function; `perf` showed the spin as most of the main thread's time). On a
// software adapter that core is one the adapter's own threads need to run the kernels. There,
// Dawn's polls go through a timer instead, every POLL_MS: a result awaited comes up to POLL_MS
// later, and the core is free. On a GPU the spin stays (the lowest latency; the host has cores to
// spare) unless BERT_PRUNER_DAWN_POLL says otherwise.
//
// Which calls are Dawn's: a function N-API made (napi_create_function) is native code with its own
// `prototype`; a promise's resolve function (our `new Promise((r) => setImmediate(r))`) is native
// code without one, and a JavaScript function is not native code. Only the first kind is timed.
import { UserError } from '../errors';

const POLL_MS = 1;

export type DawnPoll = 'timer' | 'spin';

/** BERT_PRUNER_DAWN_POLL=timer|spin|auto (default auto: timer on a software adapter, else spin). */
export function dawnPollMode(software: boolean): DawnPoll {
  const v = (process.env.BERT_PRUNER_DAWN_POLL ?? '').trim() || 'auto';
  if (v === 'timer' || v === 'spin') return v;
  if (v === 'auto') return software ? 'timer' : 'spin';
  throw new UserError(`BERT_PRUNER_DAWN_POLL='${v}': one of auto, timer, spin`);
}

/** A function made by N-API: native code with a prototype of its own (see above). */
export function isNapiFunction(fn: unknown): boolean {
  return (
    typeof fn === 'function' &&
    Object.prototype.hasOwnProperty.call(fn, 'prototype') &&
    /\{\s*\[native code\]\s*\}$/.test(Function.prototype.toString.call(fn))
  );
}

let installed = false;
let polls = 0;

/** Dawn's polls through a POLL_MS timer from now on (once per process; see above). */
export function pollDawnByTimer(): void {
  if (installed) return;
  installed = true;
  const real = globalThis.setImmediate;
  const timed = (fn: (...a: unknown[]) => void, ...args: unknown[]) => {
    if (!isNapiFunction(fn)) return real(fn, ...args);
    polls++;
    return setTimeout(fn, POLL_MS, ...args);
  };
  // setImmediate's own properties (util.promisify's custom form) stay as they were
  globalThis.setImmediate = Object.assign(timed, real) as unknown as typeof setImmediate;
}

/** Dawn polls that went through the timer so far (tests). */
export function timedPolls(): number {
  return polls;
}
