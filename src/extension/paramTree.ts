// The parameter tree of a checkpoint, computed from config.json and the safetensors header only
// (names, shapes and byte ranges), never from the weights:
//
//   model
//   ├ embeddings            word / position / token_type / LayerNorm
//   ├ encoder
//   │ └ layer i             "heads k/n · FFN m"
//   │   ├ attention         heads k/n   (query/key/value/output tensors)
//   │   └ FFN               size m      (intermediate/output tensors)
//   ├ pooler
//   ├ classifier
//   ├ cls (MLM head)        its decoder is tied to the word embeddings, so not counted twice
//   └ other                 anything with a name we do not know
//
// Head counts come from the weight shapes (query rows / head size), so they are right even for a
// checkpoint whose config were stale; n is the config's num_attention_heads.
import {
  ATTENTION, ATTENTION_OUTPUT, ATTENTION_SELF, CLASSIFIER_PREFIX, EMBEDDINGS_PREFIX, INTERMEDIATE, layer, layerOf,
  MLM_PREFIX, OUTPUT, POOLER_PREFIX,
} from '../engine/model/names';

export interface TensorInfo {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

/** The config.json fields the tree needs (a subset of a HF BertConfig). */
export interface TreeConfig {
  hidden_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  intermediate_size?: number;
  pruned_heads?: Record<string, number[]>;
}

export interface ParamNode {
  id: string; // stable path within the tree, e.g. "encoder/layer 3/attention"
  label: string;
  detail?: string; // e.g. "heads 8/12", "[768, 768] F32"
  params: number;
  bytes: number;
  children: ParamNode[];
  /** For layer nodes: what the tree and the panels show per layer. */
  layer?: { index: number; headsKept: number; headsTotal: number; ffn: number };
}

const numel = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

function leaf(id: string, label: string, t: TensorInfo): ParamNode {
  return {
    id,
    label,
    detail: `[${t.shape.join(', ')}] ${t.dtype}`,
    params: numel(t.shape),
    bytes: t.data_offsets[1] - t.data_offsets[0],
    children: [],
  };
}

function group(id: string, label: string, children: ParamNode[], detail?: string): ParamNode {
  return {
    id,
    label,
    detail,
    params: children.reduce((s, c) => s + c.params, 0),
    bytes: children.reduce((s, c) => s + c.bytes, 0),
    children,
  };
}

/** The tensors whose name starts with prefix, as leaves labelled by the name less `strip`. */
function take(entries: Map<string, TensorInfo>, prefix: string, idPrefix: string, strip = prefix): ParamNode[] {
  const out: ParamNode[] = [];
  for (const [name, t] of entries) {
    if (!name.startsWith(prefix)) continue;
    const rest = name.slice(strip.length);
    out.push(leaf(`${idPrefix}/${rest}`, rest, t));
    entries.delete(name);
  }
  return out;
}

export function buildParamTree(cfg: TreeConfig, header: Record<string, TensorInfo>): ParamNode {
  // Work on a copy that each group consumes, so every tensor lands in exactly one group.
  const rest = new Map(Object.entries(header).filter(([name]) => name !== '__metadata__'));
  const headSize = cfg.hidden_size / cfg.num_attention_heads;
  const top: ParamNode[] = [];

  const emb = take(rest, EMBEDDINGS_PREFIX, 'embeddings');
  if (emb.length) top.push(group('embeddings', 'embeddings', emb));

  // Layers present in the file (a checkpoint may have fewer than the config says if it is broken;
  // we show what is there).
  const layerIds = new Set<number>();
  for (const name of rest.keys()) {
    const l = layerOf(name);
    if (l !== null) layerIds.add(l);
  }
  const layers: ParamNode[] = [];
  for (const l of [...layerIds].sort((a, b) => a - b)) {
    const names = layer(l);
    const p = names.prefix;
    const id = `encoder/layer ${l}`;
    const q = rest.get(names.query.weight);
    const inter = rest.get(names.inter.weight);
    const removed = cfg.pruned_heads?.[String(l)]?.length ?? 0;
    const headsKept = q ? Math.round(q.shape[0] / headSize) : cfg.num_attention_heads - removed;
    const ffn = inter ? inter.shape[0] : (cfg.intermediate_size ?? 0);
    const attn = group(`${id}/attention`, 'attention', [
      ...take(rest, p + ATTENTION_SELF, `${id}/attention`, p + ATTENTION),
      ...take(rest, p + ATTENTION_OUTPUT, `${id}/attention`, p + ATTENTION),
    ], `heads ${headsKept}/${cfg.num_attention_heads}`);
    const ffnNode = group(`${id}/ffn`, 'FFN', [
      ...take(rest, p + INTERMEDIATE, `${id}/ffn`, p),
      ...take(rest, p + OUTPUT, `${id}/ffn`, p),
    ], `size ${ffn}`);
    const other = take(rest, p, id);
    const node = group(id, `layer ${l}`, [attn, ffnNode, ...other].filter((n) => n.params > 0 || n.children.length), `heads ${headsKept}/${cfg.num_attention_heads} · FFN ${ffn}`);
    node.layer = { index: l, headsKept, headsTotal: cfg.num_attention_heads, ffn };
    layers.push(node);
  }
  if (layers.length) top.push(group('encoder', 'encoder', layers, `${layers.length} layers`));

  const pooler = take(rest, POOLER_PREFIX, 'pooler');
  if (pooler.length) top.push(group('pooler', 'pooler', pooler));
  const classifier = take(rest, CLASSIFIER_PREFIX, 'classifier');
  if (classifier.length) top.push(group('classifier', 'classifier', classifier));
  const cls = take(rest, MLM_PREFIX, 'cls');
  if (cls.length) top.push(group('cls', 'cls (MLM head)', cls, 'decoder tied to word embeddings'));
  const other = take(rest, '', 'other');
  if (other.length) top.push(group('other', 'other', other));

  return group('model', 'model', top);
}

/** Every node of the tree by id (for lazy tree children and for the parameters panel). */
export function indexTree(root: ParamNode): Map<string, ParamNode> {
  const out = new Map<string, ParamNode>();
  const walk = (n: ParamNode) => {
    out.set(n.id, n);
    n.children.forEach(walk);
  };
  walk(root);
  return out;
}

export function formatCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}K`;
  return String(n);
}

export function formatMB(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(2)} MB`;
}

function formatPercent(part: number, total: number): string {
  if (total <= 0) return '0%';
  const p = (100 * part) / total;
  return p >= 10 || p === 0 ? `${p.toFixed(0)}%` : `${p.toFixed(1)}%`;
}

/** The tree item description: "1.23M · 45%". */
export function describeNode(n: ParamNode, total: number): string {
  const parts = [formatCount(n.params), formatPercent(n.params, total)];
  if (n.detail) parts.unshift(n.detail);
  return parts.join(' · ');
}
