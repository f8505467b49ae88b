// The ONNX graph of a BERT classifier, built from a checkpoint's weights: the same computation as
// model/bert.ts's classify (inference: no dropout), in standard ONNX ops of opset 17.
//
//   inputs   input_ids, attention_mask, token_type_ids   int64 [batch, sequence]
//   output   logits                                      float [batch, labels]
//
// Each layer keeps its own heads and FFN size (read from the weights' shapes, as bert.ts does),
// LayerNormalization is one node, GELU is exact (Erf). The protobuf is written by onnx-proto (the
// official onnx.proto of ONNX 1.10, compiled for protobufjs); this file only fills its messages.
//
// int8 (quantize: true): every weight matrix is stored as int8 with one scale per output channel
// (symmetric, zero point 0). Dense layers run as DynamicQuantizeLinear (the activation, uint8, one
// scale per call) + MatMulInteger, the int32 result scaled back by activation scale x channel
// scale; the embedding tables are gathered as int8 and DequantizeLinear'd per hidden column.
// LayerNorm weights and biases stay float. No contrib ops: any ONNX Runtime runs it on CPU.
import { onnx } from 'onnx-proto';
import { UserError } from '../errors';
import { BertConfig, headSize, numLabels } from '../model/config';
import { CLASSIFIER, EMB_LN, layer, POOLER, POS_EMB, TYPE_EMB, WORD_EMB } from '../model/names';

export const OPSET = 17;
/** IR version 8: ONNX 1.10 to 1.12 (the opset 17 of ONNX 1.12 needs no newer IR). */
export const IR_VERSION = 8;
/** protobuf's hard limit on one message; bigger models would need external data files. */
export const MAX_ONNX_BYTES = 2 ** 31 - 1;

/** A weight as the exporter reads it: PyTorch layout ([out, in] for a dense layer). */
export interface Weight {
  shape: number[];
  data: Float32Array;
}

export type WeightSource = (name: string) => Weight;

const DT = onnx.TensorProto.DataType;
const AT = onnx.AttributeProto.AttributeType;
type Attr = onnx.IAttributeProto;

const attrInt = (name: string, i: number): Attr => ({ name, type: AT.INT, i });
const attrFloat = (name: string, f: number): Attr => ({ name, type: AT.FLOAT, f });
const attrInts = (name: string, ints: number[]): Attr => ({ name, type: AT.INTS, ints });

/** Symmetric int8 of `w` [rows, cols] with one scale per row (rows = output channels). */
export function quantizeRows(data: Float32Array, rows: number, cols: number): { q: Int8Array; scale: Float32Array } {
  const q = new Int8Array(rows * cols);
  const scale = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    let max = 0;
    for (let c = 0; c < cols; c++) max = Math.max(max, Math.abs(data[r * cols + c]));
    const s = max > 0 ? max / 127 : 1;
    scale[r] = s;
    for (let c = 0; c < cols; c++) q[r * cols + c] = Math.max(-127, Math.min(127, Math.round(data[r * cols + c] / s)));
  }
  return { q, scale };
}

/** [rows, cols] -> [cols, rows]. */
function transpose(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = data[r * cols + c];
  return out;
}

const bytesOf = (a: Float32Array | Int8Array | BigInt64Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

class Graph {
  readonly nodes: onnx.INodeProto[] = [];
  readonly inits: onnx.ITensorProto[] = [];
  private count = 0;
  private readonly consts = new Map<string, string>();
  /** DynamicQuantizeLinear outputs per activation, so Q, K and V quantize x once. */
  private readonly quantized = new Map<string, string[]>();

  constructor(private readonly int8: boolean) {}

  op(type: string, inputs: string[], attrs: Attr[] = [], outputs = 1): string[] {
    const id = this.count++;
    // Short value names: every one is stored in the file (the node keeps the op's name).
    const out = [...Array(outputs).keys()].map((k) => `x${id}${outputs > 1 ? `_${k}` : ''}`);
    this.nodes.push({ opType: type, name: `${type}_${id}`, input: inputs, output: out, attribute: attrs });
    return out;
  }
  one(type: string, inputs: string[], attrs: Attr[] = []): string {
    return this.op(type, inputs, attrs)[0];
  }

  tensor(name: string, dims: number[], dataType: number, raw: Uint8Array): string {
    this.inits.push({ name, dims, dataType, rawData: raw });
    return name;
  }
  float(name: string, dims: number[], data: Float32Array): string {
    return this.tensor(name, dims, DT.FLOAT, bytesOf(data));
  }
  /** A small constant, stored once per value. */
  constFloat(v: number): string {
    return this.constOf(`f:${v}`, () => this.float(`const_f${this.consts.size}`, [], Float32Array.of(v)));
  }
  constInt64(v: number[], scalar = false): string {
    return this.constOf(`i:${scalar}:${v.join(',')}`, () =>
      this.tensor(
        `const_i${this.consts.size}`,
        scalar ? [] : [v.length],
        DT.INT64,
        bytesOf(BigInt64Array.from(v.map(BigInt))),
      ),
    );
  }
  private constOf(key: string, make: () => string): string {
    let n = this.consts.get(key);
    if (!n) this.consts.set(key, (n = make()));
    return n;
  }

  /** x [.., in] @ W^T + b, W [out, in] (PyTorch layout). */
  dense(x: string, name: string, w: Weight, b: Weight): string {
    const [out, inp] = w.shape;
    const bias = this.float(`${name}.bias`, [out], b.data);
    if (!this.int8) {
      const wt = this.float(`${name}.weight`, [inp, out], transpose(w.data, out, inp));
      return this.one('Add', [this.one('MatMul', [x, wt]), bias]);
    }
    const { q, scale } = quantizeRows(w.data, out, inp);
    // MatMulInteger wants B as [in, out]: transpose the int8 rows.
    const qt = new Int8Array(out * inp);
    for (let r = 0; r < out; r++) for (let c = 0; c < inp; c++) qt[c * out + r] = q[r * inp + c];
    const wq = this.tensor(`${name}.weight_int8`, [inp, out], DT.INT8, bytesOf(qt));
    const ws = this.float(`${name}.weight_scale`, [out], scale);
    let xq = this.quantized.get(x);
    if (!xq) this.quantized.set(x, (xq = this.op('DynamicQuantizeLinear', [x], [], 3)));
    const acc = this.one('MatMulInteger', [xq[0], wq, xq[2]]);
    const f = this.one('Cast', [acc], [attrInt('to', DT.FLOAT)]);
    const s = this.one('Mul', [xq[1], ws]);
    return this.one('Add', [this.one('Mul', [f, s]), bias]);
  }

  /** A table's rows: Gather (int8 + DequantizeLinear per column when quantized). */
  gatherRows(name: string, table: Weight, ids: string, outRank: number): string {
    if (!this.int8) return this.one('Gather', [this.float(name, table.shape, table.data), ids], [attrInt('axis', 0)]);
    const t = this.dequantTable(name, table);
    const g = this.one('Gather', [t.q, ids], [attrInt('axis', 0)]);
    return this.one('DequantizeLinear', [g, t.scale, t.zero], [attrInt('axis', outRank - 1)]);
  }

  /** The first `len` rows of a table ([1] int64 tensor): Slice (then DequantizeLinear when quantized). */
  sliceRows(name: string, table: Weight, len: string): string {
    const starts = this.constInt64([0]);
    const axes = this.constInt64([0]);
    if (!this.int8) return this.one('Slice', [this.float(name, table.shape, table.data), starts, len, axes]);
    const t = this.dequantTable(name, table);
    const s = this.one('Slice', [t.q, starts, len, axes]);
    return this.one('DequantizeLinear', [s, t.scale, t.zero], [attrInt('axis', 1)]);
  }

  /** An embedding table as int8 with one scale per hidden column (quantizeRows of its transpose). */
  private dequantTable(name: string, table: Weight): { q: string; scale: string; zero: string } {
    const [rows, cols] = table.shape;
    const { q, scale } = quantizeRows(transpose(table.data, rows, cols), cols, rows); // [cols, rows]
    const back = new Int8Array(rows * cols);
    for (let c = 0; c < cols; c++) for (let r = 0; r < rows; r++) back[r * cols + c] = q[c * rows + r];
    return {
      q: this.tensor(`${name}_int8`, [rows, cols], DT.INT8, bytesOf(back)),
      scale: this.float(`${name}_scale`, [cols], scale),
      zero: this.tensor(`${name}_zero_point`, [cols], DT.INT8, new Uint8Array(cols)),
    };
  }
}

function valueInfo(name: string, elemType: number, dims: (number | string)[]): onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType,
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

export const INPUT_NAMES = ['input_ids', 'attention_mask', 'token_type_ids'] as const;
export const OUTPUT_NAME = 'logits';

export interface BuildOptions {
  quantize?: boolean;
  /** Recorded in the model's metadata (e.g. the checkpoint's folder name). */
  docString?: string;
}

/** The ONNX model of a classifier checkpoint, encoded. `weight` returns each parameter by HF name. */
export function buildOnnx(cfg: BertConfig, weight: WeightSource, opt: BuildOptions = {}): Uint8Array {
  const g = new Graph(!!opt.quantize);
  const H = cfg.hidden_size;
  const D = headSize(cfg);
  const eps = cfg.layer_norm_eps;
  const ln = (x: string, name: string) =>
    g.one(
      'LayerNormalization',
      [
        x,
        g.float(`${name}.weight`, [H], weight(`${name}.weight`).data),
        g.float(`${name}.bias`, [H], weight(`${name}.bias`).data),
      ],
      [attrInt('axis', -1), attrFloat('epsilon', eps)],
    );
  const dense = (x: string, name: string) => g.dense(x, name, weight(`${name}.weight`), weight(`${name}.bias`));

  // Embeddings: word[ids] + position[0..T) + token_type[types], then LayerNorm.
  const [ids, mask, types] = INPUT_NAMES;
  const T = g.one('Slice', [g.one('Shape', [ids]), g.constInt64([1]), g.constInt64([2]), g.constInt64([0])]); // [1]
  const words = g.gatherRows(WORD_EMB, weight(WORD_EMB), ids, 3);
  const pos = g.sliceRows(POS_EMB, weight(POS_EMB), T);
  const typ = g.gatherRows(TYPE_EMB, weight(TYPE_EMB), types, 3);
  let x = ln(g.one('Add', [g.one('Add', [words, pos]), typ]), EMB_LN.name);

  // Additive attention mask [B, 1, 1, T]: 0 for tokens, -1e9 for padding (as bert.ts).
  const m = g.one('Cast', [mask], [attrInt('to', DT.FLOAT)]);
  const maskAdd = g.one('Unsqueeze', [
    g.one('Mul', [g.one('Sub', [g.constFloat(1), m]), g.constFloat(-1e9)]),
    g.constInt64([1, 2]),
  ]);

  for (let l = 0; l < cfg.num_hidden_layers; l++) {
    const M = layer(l);
    const A = weight(M.query.weight).shape[0] / D;
    let attn: string;
    if (A === 0) {
      // Every head pruned: the block adds only its output bias (as bert.ts and HF's pruned Linear).
      attn = g.float(M.attnOut.bias, [H], weight(M.attnOut.bias).data);
    } else {
      const split = g.constInt64([0, 0, A, D]);
      const heads = (t: string, perm: number[]) =>
        g.one('Transpose', [g.one('Reshape', [t, split])], [attrInts('perm', perm)]);
      const q = heads(dense(x, M.query.name), [0, 2, 1, 3]); // [B, A, T, D]
      const k = heads(dense(x, M.key.name), [0, 2, 3, 1]); // [B, A, D, T]
      const v = heads(dense(x, M.value.name), [0, 2, 1, 3]); // [B, A, T, D]
      const scores = g.one('Add', [g.one('Mul', [g.one('MatMul', [q, k]), g.constFloat(1 / Math.sqrt(D))]), maskAdd]);
      const probs = g.one('Softmax', [scores], [attrInt('axis', -1)]);
      const ctx = g.one('Transpose', [g.one('MatMul', [probs, v])], [attrInts('perm', [0, 2, 1, 3])]);
      attn = dense(g.one('Reshape', [ctx, g.constInt64([0, 0, A * D])]), M.attnOut.name);
    }
    x = ln(g.one('Add', [x, attn]), M.attnLn.name);

    let ffn: string;
    if (weight(M.inter.weight).shape[0] === 0) {
      ffn = g.float(M.out.bias, [H], weight(M.out.bias).data);
    } else {
      const h = dense(x, M.inter.name);
      // Exact GELU: 0.5 h (1 + erf(h / sqrt 2)).
      const erf = g.one('Erf', [g.one('Mul', [h, g.constFloat(Math.SQRT1_2)])]);
      const gelu = g.one('Mul', [g.one('Mul', [h, g.constFloat(0.5)]), g.one('Add', [erf, g.constFloat(1)])]);
      ffn = dense(gelu, M.out.name);
    }
    x = ln(g.one('Add', [x, ffn]), M.outLn.name);
  }

  // [CLS] -> pooler (tanh) -> classifier.
  const cls = g.one('Gather', [x, g.constInt64([0], true)], [attrInt('axis', 1)]); // [B, H]
  const pooled = g.one('Tanh', [dense(cls, POOLER.name)]);
  const logits = dense(pooled, CLASSIFIER.name);
  g.nodes.push({ opType: 'Identity', name: 'logits', input: [logits], output: [OUTPUT_NAME] });

  const model: onnx.IModelProto = {
    irVersion: IR_VERSION,
    opsetImport: [{ domain: '', version: OPSET }],
    producerName: 'bert-pruner',
    docString: opt.docString ?? '',
    graph: {
      name: 'bert_classifier',
      node: g.nodes,
      initializer: g.inits,
      input: INPUT_NAMES.map((n) => valueInfo(n, DT.INT64, ['batch', 'sequence'])),
      output: [valueInfo(OUTPUT_NAME, DT.FLOAT, ['batch', numLabels(cfg)])],
    },
    metadataProps: [{ key: 'quantization', value: opt.quantize ? 'int8' : 'none' }],
  };
  const bytes = g.inits.reduce((a, t) => a + (t.rawData?.length ?? 0), 0);
  if (bytes > MAX_ONNX_BYTES - 2 ** 24)
    throw new UserError(
      `the model's weights are ${bytes} bytes; one ONNX file holds at most 2 GB (try --quantize int8)`,
    );
  return onnx.ModelProto.encode(onnx.ModelProto.create(model)).finish();
}
