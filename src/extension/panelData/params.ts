// The Parameters panel's data (pure): a checkpoint's parameter tree as module and layer totals.
import type { ModelStructure, ParamNode } from '../paramTree';

export interface ParamsColumn {
  label: string; // e.g. "runs/a/finetune"
  dir: string;
  configFile?: string; // its config.json, which the page may ask to open
  total: number;
  bytes: number; // of the tensors (float32)
  /** The size of model.safetensors, the figure the report and the Runs view show too. */
  fileBytes?: number;
  groups: { label: string; params: number }[]; // embeddings, attention, FFN, pooler, ...
  layers: {
    index: number;
    original?: number; // the layer it was before pruning (prune-report.json beside the checkpoint)
    headsKept: number;
    headsTotal: number;
    ffn: number;
    attention: number;
    ffnParams: number;
  }[];
  /** Layers, hidden size, head size; and which layers and hidden size it had before a pruning. */
  structure?: ModelStructure;
}

export interface ParamsMessage {
  type: 'params';
  columns: ParamsColumn[]; // one checkpoint, or two when comparing (before, after)
  problems: string[];
}

/** Module totals a bar chart can compare across checkpoints: attention and FFN summed over layers. */
export function paramsColumn(label: string, dir: string, tree: ParamNode): ParamsColumn {
  const groups: { label: string; params: number }[] = [];
  const layers: ParamsColumn['layers'] = [];
  let attention = 0;
  let ffn = 0;
  let layerOther = 0;
  for (const top of tree.children) {
    if (top.id !== 'encoder') {
      groups.push({ label: top.label, params: top.params });
      continue;
    }
    for (const layer of top.children) {
      const a = layer.children.find((c) => c.label === 'attention')?.params ?? 0;
      const f = layer.children.find((c) => c.label === 'FFN')?.params ?? 0;
      attention += a;
      ffn += f;
      layerOther += layer.params - a - f;
      if (layer.layer) layers.push({ ...layer.layer, attention: a, ffnParams: f });
    }
  }
  const encoderGroups = [
    { label: 'attention', params: attention },
    { label: 'FFN', params: ffn },
    ...(layerOther ? [{ label: 'encoder (other)', params: layerOther }] : []),
  ];
  // Keep the model's order: embeddings, then the encoder's parts, then the heads.
  const at = groups.findIndex((g) => g.label === 'embeddings') + 1;
  groups.splice(at, 0, ...encoderGroups);
  const out: ParamsColumn = { label, dir, total: tree.params, bytes: tree.bytes, groups, layers };
  if (tree.structure) out.structure = tree.structure;
  return out;
}

export type ParamsLayer = ParamsColumn['layers'][number];

/**
 * The rows of the panel's per-layer table and chart, one per original layer: a pruned checkpoint's
 * layer i sits in the row of the layer it was (layer.original), so a before/after comparison lines
 * up, and a layer its pruning removed reads 'removed'. The label is the original id, with the
 * checkpoint's own index where it differs ("3 (now 2)").
 */
export function layerRows(
  columns: ParamsColumn[],
): { label: string; cells: (ParamsLayer | 'removed' | undefined)[] }[] {
  // By original id per column (maps, not finds: a hostile header may name thousands of layers).
  const byKey = columns.map((c) => new Map(c.layers.map((x) => [x.original ?? x.index, x])));
  const removedIn = columns.map((c) => {
    const from = c.structure?.prunedFrom;
    return from && from.layersKept.length === c.layers.length ? from.layersBefore : 0;
  });
  const keys = new Set(byKey.flatMap((m) => [...m.keys()]));
  // A pruned checkpoint's removed layers get rows too.
  for (const before of removedIn) for (let l = 0; l < before; l++) keys.add(l);
  return [...keys]
    .sort((a, b) => a - b)
    .map((k) => {
      const cells = byKey.map((m, i) => m.get(k) ?? (k < removedIn[i] ? ('removed' as const) : undefined));
      const now = [
        ...new Set(cells.filter((x): x is ParamsLayer => typeof x === 'object' && x.index !== k).map((x) => x.index)),
      ];
      return { label: now.length ? `${k} (now ${now.join(' / ')})` : String(k), cells };
    });
}
