// The Parameters panel's data (pure): a checkpoint's parameter tree as module and layer totals.
import type { ParamNode } from '../paramTree';

export interface ParamsColumn {
  label: string; // e.g. "runs/a/finetune"
  dir: string;
  configFile?: string; // its config.json, which the page may ask to open
  total: number;
  bytes: number; // of the tensors (float32)
  /** The size of model.safetensors, the figure the report and the Runs view show too. */
  fileBytes?: number;
  groups: { label: string; params: number }[]; // embeddings, attention, FFN, pooler, ...
  layers: { index: number; headsKept: number; headsTotal: number; ffn: number; attention: number; ffnParams: number }[];
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
  return { label, dir, total: tree.params, bytes: tree.bytes, groups, layers };
}
