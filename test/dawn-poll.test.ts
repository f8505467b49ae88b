// How the main thread waits for the GPU (backend/dawn-poll.ts): on a software adapter Dawn's polls
// go through a timer instead of spinning a core; everything else scheduled with setImmediate is
// untouched. The webgpu part runs on any adapter (lavapipe here) and skips with one line without one.
import * as tf from '@tensorflow/tfjs';
import { afterEach, describe, expect, it } from 'vitest';
import { dawnPollMode, isNapiFunction, timedPolls } from '../src/engine/backend/dawn-poll';
import { webgpuAdapter } from '../src/engine/backend/webgpu';
import { webgpuMissing } from './helpers/backends';

describe('dawn-poll', () => {
  afterEach(() => {
    delete process.env.BERT_PRUNER_DAWN_POLL;
  });

  it('BERT_PRUNER_DAWN_POLL: auto is a timer on a software adapter and the spin on a GPU; a bad value is named', () => {
    expect([dawnPollMode(true), dawnPollMode(false)]).toEqual(['timer', 'spin']);
    process.env.BERT_PRUNER_DAWN_POLL = 'spin';
    expect(dawnPollMode(true)).toBe('spin');
    process.env.BERT_PRUNER_DAWN_POLL = ' timer ';
    expect(dawnPollMode(false)).toBe('timer');
    process.env.BERT_PRUNER_DAWN_POLL = 'fast';
    expect(() => dawnPollMode(true)).toThrow("BERT_PRUNER_DAWN_POLL='fast': one of auto, timer, spin");
  });

  it("tells an N-API function (native, own prototype) from a promise's resolve, bound and JS functions", async () => {
    let resolve: (() => void) | null = null;
    const p = new Promise<void>((r) => (resolve = r));
    expect(isNapiFunction(resolve)).toBe(false);
    resolve!();
    await p;
    expect(isNapiFunction(() => 1)).toBe(false);
    expect(isNapiFunction(function named() {})).toBe(false);
    expect(isNapiFunction(Math.max)).toBe(false); // native, no prototype
    expect(isNapiFunction(function () {}.bind(null))).toBe(false);
    expect(isNapiFunction(Array)).toBe(true); // native with a prototype, as napi_create_function's
    expect(isNapiFunction('setImmediate')).toBe(false);
  });
});

const missing = await webgpuMissing('dawn-poll webgpu test');

describe.skipIf(missing !== null)('dawn-poll on webgpu', () => {
  it("software adapter: Dawn's polls timed, results back, setImmediate still runs our callbacks", async () => {
    const software = webgpuAdapter()!.software;
    const before = timedPolls();
    const x = tf.tensor1d([1, 2, 3]);
    const y = tf.mul(x, 2);
    expect(Array.from(await y.data())).toEqual([2, 4, 6]); // a read back: Dawn polls until it is mapped
    tf.dispose([x, y]);
    if (software && !process.env.BERT_PRUNER_DAWN_POLL) expect(timedPolls()).toBeGreaterThan(before);
    const order: string[] = [];
    await new Promise<void>((r) =>
      setImmediate(() => {
        order.push('immediate');
        r();
      }),
    );
    await new Promise((r) => setImmediate(r));
    expect(order).toEqual(['immediate']);
  });
});
