// The parameter tree, like TextPruner's `summary`: every module prefix of the HF parameter names
// with its number of parameters, its share of the total and its size in MB (float32). Built from
// names and shapes only, so it works from a safetensors header without loading any weights.
// Tied weights (the MLM decoder = the word embeddings) are stored once and so counted once.
import { BertConfig, ffnPerLayer, headSize, headsPerLayer } from '../model/config';
import { ENCODER } from '../model/names';

export interface ParamNode {
  name: string; // full module path (a prefix of HF parameter names), e.g. the attention of layer 3
  params: number;
  ratio: number; // of the model total
  mb: number; // float32
  children: ParamNode[];
}

const BYTES_PER_PARAM = 4;

export function paramTree(entries: [string, number[]][]): ParamNode {
  const root: ParamNode = { name: '', params: 0, ratio: 1, mb: 0, children: [] };
  const index = new Map<string, ParamNode>([['', root]]);
  for (const [name, shape] of entries) {
    const n = shape.reduce((a, b) => a * b, 1);
    const parts = name.split('.');
    let prefix = '';
    root.params += n;
    for (const part of parts) {
      const next = prefix ? `${prefix}.${part}` : part;
      let node = index.get(next);
      if (!node) {
        node = { name: next, params: 0, ratio: 0, mb: 0, children: [] };
        index.get(prefix)!.children.push(node);
        index.set(next, node);
      }
      node.params += n;
      prefix = next;
    }
  }
  for (const node of index.values()) {
    node.ratio = root.params ? node.params / root.params : 0;
    node.mb = (node.params * BYTES_PER_PARAM) / 1e6;
  }
  return root;
}

/** Rows of the printed summary down to maxDepth (1 = top-level modules). */
export function summaryRows(
  root: ParamNode,
  maxDepth = 4,
): { name: string; depth: number; params: number; ratio: number; mb: number }[] {
  const rows: { name: string; depth: number; params: number; ratio: number; mb: number }[] = [];
  const walk = (n: ParamNode, depth: number) => {
    if (depth > 0) rows.push({ name: n.name, depth, params: n.params, ratio: n.ratio, mb: n.mb });
    if (depth < maxDepth) for (const c of n.children) walk(c, depth + 1);
  };
  walk(root, 0);
  return rows;
}

export function encoderParams(root: ParamNode): number {
  const find = (n: ParamNode): ParamNode | undefined => (n.name === ENCODER ? n : n.children.map(find).find(Boolean));
  return find(root)?.params ?? 0;
}

/**
 * Multiply-adds x 2 for one sequence of length T through embeddings LayerNorm, every layer, the
 * pooler and the classifier (the classification forward pass). Softmax / LayerNorm / GELU are
 * counted as ~5 flops per element; they matter little.
 */
export function flopsPerSequence(cfg: BertConfig, T: number): number {
  const H = cfg.hidden_size;
  const D = headSize(cfg);
  const heads = headsPerLayer(cfg);
  const ffn = ffnPerLayer(cfg);
  let f = 5 * T * H; // embeddings LayerNorm
  for (let l = 0; l < cfg.num_hidden_layers; l++) {
    const AD = heads[l] * D;
    f += 2 * T * H * AD * 3; // Q, K, V
    f += 2 * T * T * AD * 2; // scores and context
    f += 5 * heads[l] * T * T; // softmax
    f += 2 * T * AD * H; // attention output
    f += 2 * T * H * ffn[l] * 2 + 5 * T * ffn[l]; // FFN + GELU
    f += 2 * 5 * T * H; // two LayerNorms
  }
  f += 2 * H * H + 2 * H * 17; // pooler + classifier
  return f;
}
