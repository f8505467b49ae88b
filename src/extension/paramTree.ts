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
// checkpoint whose config were stale; n is the config's num_attention_heads. The head size is the
// config's attention_head_size where it has one (a pruned hidden size keeps the heads' own size),
// else hidden_size / num_attention_heads. A pruned checkpoint with its prune-report.json beside it
// also says which original layers it kept and the hidden size before ("encoder: layers 3 of 4 kept
// (0, 2, 3) · hidden 96 of 128 · head size 32"); each layer names the original one it was.
import { hiddenText, layersKeptText } from './figures';
import {
  ATTENTION,
  ATTENTION_OUTPUT,
  ATTENTION_SELF,
  CLASSIFIER_PREFIX,
  EMBEDDINGS_PREFIX,
  INTERMEDIATE,
  layer,
  layerOf,
  MLM_PREFIX,
  OUTPUT,
  POOLER_PREFIX,
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
  /** Ours, written when the head size is not hidden_size / num_attention_heads (a pruned hidden size). */
  attention_head_size?: number;
  intermediate_size?: number;
  pruned_heads?: Record<string, number[]>;
}

/** What a pruning report says about the model before it (prune-report.json's `structure`). */
export interface PrunedFrom {
  layersBefore: number;
  layersKept: number[]; // original ids; layer i of the checkpoint was layersKept[i]
  hiddenBefore: number;
}

/** The checkpoint's shape beyond heads and FFN, for the tree and the Parameters panel. */
export interface ModelStructure {
  layers: number; // in the checkpoint
  hidden: number;
  headSize: number;
  prunedFrom?: PrunedFrom;
}

/** The head size of a config: attention_head_size when given (and valid), else hidden / heads. */
export function headSizeOf(cfg: TreeConfig): number {
  const d = cfg.attention_head_size;
  return typeof d === 'number' && Number.isInteger(d) && d > 0 ? d : cfg.hidden_size / cfg.num_attention_heads;
}

/** The `structure` of a prune-report.json as PrunedFrom, if it has a usable one. */
export function prunedFromReport(report: unknown): PrunedFrom | undefined {
  const s = typeof report === 'object' && report !== null ? (report as { structure?: unknown }).structure : undefined;
  if (typeof s !== 'object' || s === null) return undefined;
  const { layers_before: lb, layers_kept: kept, hidden_before: hb } = s as Record<string, unknown>;
  return usablePrunedFrom(lb, kept, hb);
}

/** A checkpoint's pruned-from.json (written by the engine, io/checkpoint.ts) as PrunedFrom, if usable. */
export function prunedFromFile(json: unknown): PrunedFrom | undefined {
  if (typeof json !== 'object' || json === null) return undefined;
  const { teacher_layers: lb, layers: kept, teacher_hidden: hb } = json as Record<string, unknown>;
  return usablePrunedFrom(lb, kept, hb);
}

function usablePrunedFrom(lb: unknown, kept: unknown, hb: unknown): PrunedFrom | undefined {
  const int = (x: unknown): x is number => typeof x === 'number' && Number.isInteger(x) && x >= 0;
  if (!int(lb) || !int(hb) || !Array.isArray(kept) || !kept.every((l) => int(l) && l < lb)) return undefined;
  return { layersBefore: lb, layersKept: kept as number[], hiddenBefore: hb };
}

/** "layers 3 of 4 kept (0, 2, 3) · hidden 96 of 128 · head size 32", or "4 layers · hidden 128 · head size 32". */
export function describeStructure(s: ModelStructure): string {
  // Layers named only where some were removed (and the report matches the checkpoint).
  const from =
    s.prunedFrom && s.prunedFrom.layersKept.length === s.layers && s.prunedFrom.layersBefore !== s.layers
      ? s.prunedFrom
      : undefined;
  const layers = from ? layersKeptText(from.layersKept, from.layersBefore) : `${s.layers} layers`;
  const headSize = Number.isInteger(s.headSize) ? String(s.headSize) : s.headSize.toFixed(2);
  return `${layers} · ${hiddenText(s.hidden, s.prunedFrom?.hiddenBefore)} · head size ${headSize}`;
}

export interface ParamNode {
  id: string; // stable path within the tree, e.g. "encoder/layer 3/attention"
  label: string;
  detail?: string; // e.g. "heads 8/12", "[768, 768] F32"
  params: number;
  bytes: number;
  children: ParamNode[];
  /** For layer nodes: what the tree and the panels show per layer (original: its id before pruning). */
  layer?: { index: number; original?: number; headsKept: number; headsTotal: number; ffn: number };
  /** For the root: layers, hidden size and head size. */
  structure?: ModelStructure;
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

/** A tensor as a leaf labelled by its name less the first `strip` characters. */
const leafOf = (name: string, t: TensorInfo, idPrefix: string, strip: number) =>
  leaf(`${idPrefix}/${name.slice(strip)}`, name.slice(strip), t);

/** One layer's tensors, sorted into the groups the tree shows (in file order within each). */
interface LayerBucket {
  self: [string, TensorInfo][];
  attnOut: [string, TensorInfo][];
  inter: [string, TensorInfo][];
  out: [string, TensorInfo][];
  other: [string, TensorInfo][];
}

/**
 * The tree, built in one pass over the header's names (each name is looked at once, so a header
 * with tens of thousands of layer-like names takes milliseconds; the former per-layer rescans
 * took a minute for 20 000 names).
 */
export function buildParamTree(
  cfg: TreeConfig,
  header: Record<string, TensorInfo>,
  prunedFrom?: PrunedFrom,
): ParamNode {
  const headSize = headSizeOf(cfg);
  const emb: ParamNode[] = [];
  const pooler: ParamNode[] = [];
  const classifier: ParamNode[] = [];
  const cls: ParamNode[] = [];
  const rest: ParamNode[] = [];
  // Layers present in the file (a checkpoint may have fewer than the config says if it is broken;
  // we show what is there).
  const buckets = new Map<number, LayerBucket>();
  for (const [name, t] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    if (name.startsWith(EMBEDDINGS_PREFIX)) {
      emb.push(leafOf(name, t, 'embeddings', EMBEDDINGS_PREFIX.length));
      continue;
    }
    const l = layerOf(name);
    const prefix = l === null ? '' : layer(l).prefix;
    if (l !== null && name.startsWith(prefix)) {
      // not 'layer.01.': that is no layer's name
      let b = buckets.get(l);
      if (!b) buckets.set(l, (b = { self: [], attnOut: [], inter: [], out: [], other: [] }));
      const inLayer = name.slice(prefix.length);
      const list = inLayer.startsWith(ATTENTION_SELF)
        ? b.self
        : inLayer.startsWith(ATTENTION_OUTPUT)
          ? b.attnOut
          : inLayer.startsWith(INTERMEDIATE)
            ? b.inter
            : inLayer.startsWith(OUTPUT)
              ? b.out
              : b.other;
      list.push([name, t]);
    } else if (name.startsWith(POOLER_PREFIX)) pooler.push(leafOf(name, t, 'pooler', POOLER_PREFIX.length));
    else if (name.startsWith(CLASSIFIER_PREFIX)) {
      classifier.push(leafOf(name, t, 'classifier', CLASSIFIER_PREFIX.length));
    } else if (name.startsWith(MLM_PREFIX)) cls.push(leafOf(name, t, 'cls', MLM_PREFIX.length));
    else rest.push(leafOf(name, t, 'other', 0));
  }

  // A report whose kept layers do not match the checkpoint's layer count names no layer.
  const keptIds = prunedFrom?.layersKept.length === buckets.size ? prunedFrom.layersKept : undefined;
  const top: ParamNode[] = [];
  if (emb.length) top.push(group('embeddings', 'embeddings', emb));
  const layers: ParamNode[] = [];
  for (const l of [...buckets.keys()].sort((a, b) => a - b)) {
    const b = buckets.get(l)!;
    const names = layer(l);
    const p = names.prefix;
    const id = `encoder/layer ${l}`;
    const find = (list: [string, TensorInfo][], n: string) => list.find(([k]) => k === n)?.[1];
    const q = find(b.self, names.query.weight);
    const inter = find(b.inter, names.inter.weight);
    const removed = cfg.pruned_heads?.[String(l)]?.length ?? 0;
    const headsKept = q ? Math.round(q.shape[0] / headSize) : cfg.num_attention_heads - removed;
    const ffn = inter ? inter.shape[0] : (cfg.intermediate_size ?? 0);
    const strip = (p + ATTENTION).length;
    const attnLeaves = [...b.self, ...b.attnOut].map(([n, t]) => leafOf(n, t, `${id}/attention`, strip));
    const attn = group(`${id}/attention`, 'attention', attnLeaves, `heads ${headsKept}/${cfg.num_attention_heads}`);
    const ffnLeaves = [...b.inter, ...b.out].map(([n, t]) => leafOf(n, t, `${id}/ffn`, p.length));
    const ffnNode = group(`${id}/ffn`, 'FFN', ffnLeaves, `size ${ffn}`);
    const other = b.other.map(([n, t]) => leafOf(n, t, id, p.length));
    // The original layer it was, when the report's kept layers match the checkpoint's.
    const original = keptIds?.[l];
    const node = group(
      id,
      original !== undefined && original !== l ? `layer ${l} (was ${original})` : `layer ${l}`,
      [attn, ffnNode, ...other].filter((n) => n.params > 0 || n.children.length),
      `heads ${headsKept}/${cfg.num_attention_heads} · FFN ${ffn}`,
    );
    node.layer = { index: l, headsKept, headsTotal: cfg.num_attention_heads, ffn };
    if (original !== undefined) node.layer.original = original;
    layers.push(node);
  }
  const structure: ModelStructure = {
    layers: layers.length || cfg.num_hidden_layers,
    hidden: cfg.hidden_size,
    headSize,
    ...(prunedFrom ? { prunedFrom } : {}),
  };
  if (layers.length) top.push(group('encoder', 'encoder', layers, describeStructure(structure)));
  if (pooler.length) top.push(group('pooler', 'pooler', pooler));
  if (classifier.length) top.push(group('classifier', 'classifier', classifier));
  if (cls.length) top.push(group('cls', 'cls (MLM head)', cls, 'decoder tied to word embeddings'));
  if (rest.length) top.push(group('other', 'other', rest));

  const root = group('model', 'model', top);
  root.structure = structure;
  return root;
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

function formatPercent(part: number, total: number): string {
  if (total <= 0) return '0%';
  const p = (100 * part) / total;
  return p >= 10 || p === 0 ? `${p.toFixed(0)}%` : `${p.toFixed(1)}%`;
}

/**
 * A checkpoint's line in the Runs tree: "1.23M params", and for a checkpoint pruned deeper (its
 * prune-report.json beside it) the layers and hidden size it kept: "85K params · 3 of 4 layers · hidden 96 of 128".
 */
export function checkpointDescription(root: ParamNode): string {
  const parts = [`${formatCount(root.params)} params`];
  const s = root.structure;
  const from = s?.prunedFrom;
  if (s && from) {
    if (from.layersBefore !== s.layers) parts.push(`${s.layers} of ${from.layersBefore} layers`);
    if (from.hiddenBefore !== s.hidden) parts.push(hiddenText(s.hidden, from.hiddenBefore));
  }
  return parts.join(' · ');
}

/** The tree item description: "1.23M · 45%". */
export function describeNode(n: ParamNode, total: number): string {
  const parts = [formatCount(n.params), formatPercent(n.params, total)];
  if (n.detail) parts.unshift(n.detail);
  return parts.join(' · ');
}
