// Gradients of a scalar loss with respect to variables: tf.variableGrads, holding less memory.
//
// tfjs's backward pass (tfjs-core tape.ts, backpropagateGradients) walks the tape from the loss
// back and keeps every gradient it computes, and every tensor the forward pass saved for it, until
// the whole pass ends. A training step's peak is then the saved activations plus a gradient of
// each activation: measured on webgpu for a 2-layer, 768-wide BERT's first step at 32 x 128
// tokens, 1283 MiB in use at once; with this, 745.
//
// This walks the same tape in the same order, with the same gradient functions, and gives back
// what a node alone used once its inputs' gradients are made:
//   - the gradients of its outputs (each output is made by one node, so nothing else reads them);
//   - the tensors it saved in the forward pass (tfjs saves a clone per node: only this node's
//     gradient function reads them);
//   - a gradient added into an input's running sum.
// The peak is then about the saved activations: the gradients flow through a layer at a time.
// Values are those of tf.variableGrads (same kernels, same order of sums;
// test/model-grads.test.ts). Inside another gradient computation (a higher-order gradient)
// tfjs's own is used, since the outer one still needs the tape.
//
// This uses tfjs-core's engine internals (the tape, its nodes, startTape/endTape), not a public
// API; package.json pins tfjs 4.22.0, and a missing piece falls back to tf.variableGrads.
import * as tf from '@tensorflow/tfjs';

/** A node of tfjs's tape (tfjs-core engine.ts addTapeNode). */
interface TapeNode {
  id: number;
  kernelName: string;
  inputs: Record<string, tf.Tensor>;
  outputs: tf.Tensor[];
  saved?: tf.Tensor[];
  gradient?: (dys: (tf.Tensor | null)[]) => Record<string, () => tf.Tensor>;
}

/** The parts of tfjs-core's Engine used here. */
interface EngineInternals {
  state: { activeTape: TapeNode[] | null; gradientDepth: number };
  scopedRun<T>(start: () => void, end: () => void, f: () => T): T;
  startTape(): void;
  endTape(): void;
  tidy<T extends tf.TensorContainer>(name: string, f: () => T): T;
}

function engineInternals(): EngineInternals | null {
  const e = tf.engine() as unknown as Partial<EngineInternals>;
  const ok =
    typeof e.scopedRun === 'function' &&
    typeof e.startTape === 'function' &&
    typeof e.endTape === 'function' &&
    e.state != null &&
    e.state.gradientDepth === 0;
  return ok ? (e as EngineInternals) : null;
}

/**
 * The nodes on a path from one of xs to y, in tape order, each with only the inputs that depend on
 * xs (those are the ones that get a gradient), as tfjs's getFilteredNodesXToY chooses them.
 */
function pathNodes(tape: TapeNode[], xs: tf.Tensor[], y: tf.Tensor): TapeNode[] {
  const fromX = new Set(xs.map((x) => x.id));
  const nodeFromX = new Set<number>();
  for (const node of tape)
    if (Object.values(node.inputs).some((t) => fromX.has(t.id))) {
      nodeFromX.add(node.id);
      for (const o of node.outputs) fromX.add(o.id);
    }
  const toY = new Set([y.id]);
  const nodeToY = new Set<number>();
  for (let i = tape.length - 1; i >= 0; i--) {
    const node = tape[i];
    if (!node.outputs.some((o) => toY.has(o.id))) continue;
    nodeToY.add(node.id);
    for (const t of Object.values(node.inputs)) toY.add(t.id);
  }
  return tape
    .filter((n) => nodeFromX.has(n.id) && nodeToY.has(n.id))
    .map((n) => ({
      ...n,
      inputs: Object.fromEntries(Object.entries(n.inputs).filter(([, t]) => fromX.has(t.id))),
    }));
}

/**
 * The running gradients, by tensor id. A gradient function may hand back a tensor it was given (a
 * dy, a saved tensor), so one tensor can be held under two ids: it is disposed with its last.
 */
class Grads {
  private byId = new Map<number, tf.Tensor>();
  private holds = new Map<tf.Tensor, number>();

  get(id: number): tf.Tensor | undefined {
    return this.byId.get(id);
  }

  /** Hold t as id's gradient (what id held before is dropped). */
  set(id: number, t: tf.Tensor): void {
    this.holds.set(t, (this.holds.get(t) ?? 0) + 1);
    this.drop(id);
    this.byId.set(id, t);
  }

  /** Forget id's gradient, disposing it unless held under another id. */
  drop(id: number): void {
    const t = this.byId.get(id);
    if (!t) return;
    this.byId.delete(id);
    const n = this.holds.get(t)! - 1;
    if (n > 0) this.holds.set(t, n);
    else {
      this.holds.delete(t);
      t.dispose();
    }
  }

  /** Dispose t unless it is held. */
  release(t: tf.Tensor): void {
    if (!this.holds.has(t)) t.dispose();
  }
}

/**
 * The backward pass over nodes from y (whose gradient is ones), freeing as it goes (see the header).
 * Returns the gradient of each of xs (undefined where y does not depend on it).
 */
function backward(e: EngineInternals, nodes: TapeNode[], xs: tf.Tensor[], y: tf.Tensor): (tf.Tensor | undefined)[] {
  const grads = new Grads();
  grads.set(y.id, tf.ones(y.shape)); // as tfjs: a constant, not a program
  const xIds = new Set(xs.map((x) => x.id));
  for (let i = nodes.length - 1; i >= 0; i--) {
    const node = nodes[i];
    if (!node.gradient) throw new Error(`no gradient for ${node.kernelName}`);
    const fns = node.gradient(node.outputs.map((o) => grads.get(o.id) ?? null));
    for (const [name, x] of Object.entries(node.inputs)) {
      if (!(name in fns)) throw new Error(`no gradient of ${node.kernelName}'s input ${name}`);
      const dx = e.tidy(`grad ${node.kernelName}`, fns[name]);
      if (dx.dtype !== 'float32' || !tf.util.arraysEqual(dx.shape, x.shape))
        throw new Error(`${node.kernelName}'s gradient of ${name} is ${dx.dtype} ${dx.shape}, not float32 ${x.shape}`);
      const prev = grads.get(x.id);
      if (!prev) grads.set(x.id, dx);
      else {
        grads.set(x.id, tf.add(prev, dx)); // drops prev
        grads.release(dx);
      }
    }
    // Each output is made by this node alone, and its saved tensors are for this node alone.
    for (const o of node.outputs) if (!xIds.has(o.id)) grads.drop(o.id);
    for (const s of node.saved ?? []) grads.release(s);
  }
  return xs.map((x) => grads.get(x.id));
}

/**
 * tf.variableGrads(f, vars) (f returns a scalar): the loss and the gradient of each trainable
 * variable it depends on, keyed by the variable's name; with less memory held (see the header).
 */
export function variableGrads(
  f: () => tf.Scalar,
  vars: tf.Variable[],
): { value: tf.Scalar; grads: Record<string, tf.Tensor> } {
  const e = engineInternals();
  if (!e) return tf.variableGrads(f, vars);
  const xs = vars.filter((v) => v.trainable);
  if (xs.length === 0) throw new Error('variableGrads: none of the variables is trainable');
  const y = e.scopedRun(
    () => e.startTape(),
    () => e.endTape(),
    () => e.tidy('forward', f),
  );
  const tape = e.state.activeTape ?? [];
  try {
    if (!(y instanceof tf.Tensor) || y.rank !== 0) throw new Error('variableGrads: f must return a scalar');
    return e.tidy('backward', () => {
      const gs = backward(e, pathNodes(tape, xs, y), xs, y);
      if (gs.every((g) => !g)) throw new Error('variableGrads: the loss depends on none of the variables');
      const grads: Record<string, tf.Tensor> = {};
      xs.forEach((x, i) => {
        if (gs[i]) grads[x.name] = gs[i]!;
      });
      return { value: y, grads };
    });
  } catch (err) {
    if (y instanceof tf.Tensor) y.dispose();
    throw err;
  } finally {
    // As tfjs does after a gradient: the saved tensors of every node (off the path too) go.
    for (const node of tape) for (const s of node.saved ?? []) s.dispose();
    e.state.activeTape = null;
  }
}
