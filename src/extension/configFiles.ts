// Config files in the editor, the parts that need no VS Code: turning the engine's error messages
// into file locations (for diagnostics), the mistakes the schema cannot express (configChecks),
// and writing a starting-point pruning config.
//
// The engine reports bad input as lines `FILE: /json/pointer: message` (config validation; the root
// is written `(top level)`) or
// `FILE:LINE[:COL]: message` (JSON syntax, CSV rows). A message may hold several such lines.
import { parseTree, type Node } from 'jsonc-parser';
import { jsonDepthExceeded } from '../engine/io/read';
import { BUDGET_COUNTS, budgetKeysIn, budgetProblems, type BudgetKey } from '../engine/config/budgets';
import { checkConfigJson } from '../engine/model/config';
import { budgetMet, encoderParamsOf, modelParamsOf } from '../engine/prune/budget';

export interface ErrorLocation {
  file: string;
  message: string;
  pointer?: string; // JSON pointer, '' for the document root
  line?: number; // 1-based
  col?: number; // 1-based
}

const POINTER_LINE = /^(.+?): (\/[^:\n]*|\(top level\)): (.+)$/;
const LINE_LINE = /^(.+?):(\d+)(?::(\d+))?: (.+)$/;

export function parseEngineErrors(text: string): ErrorLocation[] {
  const out: ErrorLocation[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    let m = LINE_LINE.exec(line);
    if (m) {
      out.push({ file: m[1], line: Number(m[2]), col: m[3] ? Number(m[3]) : undefined, message: m[4] });
      continue;
    }
    m = POINTER_LINE.exec(line);
    if (m) out.push({ file: m[1], pointer: m[2].startsWith('/') && m[2] !== '/' ? m[2] : '', message: m[3] });
  }
  return out;
}

/** Decode a JSON pointer into path segments ('/a~1b/0' -> ['a/b', '0']). */
export function pointerSegments(pointer: string): string[] {
  if (pointer === '' || pointer === '/') return [];
  return pointer
    .replace(/^\//, '')
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/**
 * The text range a JSON pointer refers to in `text`: the value if it exists, else the nearest
 * ancestor that does (a missing required key is the object's fault). For an object or array
 * value the range is its key, so the underline stays short. Offsets are character offsets.
 */
export function pointerRange(text: string, pointer: string, message = ''): { start: number; end: number } {
  // "unknown key 'x' ..." is reported at the object holding x: underline the key itself.
  const unknown = /^unknown key '(.+?)'(?: \(|$)/.exec(message);
  if (unknown) {
    const r = keyRange(text, `${pointer}/${unknown[1].replace(/~/g, '~0').replace(/\//g, '~1')}`);
    if (r) return r;
  }
  // jsonc-parser's parser recurses: never on a document nested deeper than we parse (io/read.ts).
  const deep = jsonDepthExceeded(text);
  if (deep >= 0) return { start: deep, end: deep + 1 };
  const root = parseTree(text);
  if (!root) return { start: 0, end: Math.min(1, text.length) };
  // Walk down as far as the document goes.
  let node: Node = root;
  for (const seg of pointerSegments(pointer)) {
    let next: Node | undefined;
    if (node.type === 'object') next = node.children?.find((p) => p.children?.[0]?.value === seg)?.children?.[1];
    else if (node.type === 'array' && /^\d+$/.test(seg)) next = node.children?.[Number(seg)];
    if (!next) break;
    node = next;
  }
  if (node === root) return { start: root.offset, end: root.offset + 1 };
  if ((node.type === 'object' || node.type === 'array') && node.parent?.type === 'property') {
    const key = node.parent.children![0];
    return { start: key.offset, end: key.offset + key.length };
  }
  return { start: node.offset, end: node.offset + node.length };
}

/** The range of the key of the property a pointer names, if it exists. */
function keyRange(text: string, pointer: string): { start: number; end: number } | undefined {
  if (jsonDepthExceeded(text) >= 0) return undefined;
  const root = parseTree(text);
  let node: Node | undefined = root;
  let key: Node | undefined;
  for (const seg of pointerSegments(pointer)) {
    if (node?.type !== 'object') return undefined;
    const prop: Node | undefined = node.children?.find((p) => p.children?.[0]?.value === seg);
    key = prop?.children?.[0];
    node = prop?.children?.[1];
    if (!key) return undefined;
  }
  return key ? { start: key.offset, end: key.offset + key.length } : undefined;
}

// ---- locations as line/character ranges ------------------------------------------------------------

/** Zero-based, in UTF-16 code units (what vscode.Position counts). */
export interface TextPosition {
  line: number;
  character: number;
}
export interface TextRange {
  start: TextPosition;
  end: TextPosition;
}

/** The position of a character offset (\r\n, \n and \r end lines, as in a TextDocument). */
export function positionAt(text: string, offset: number): TextPosition {
  const before = text.slice(0, Math.max(0, Math.min(offset, text.length)));
  const lines = before.split(/\r\n|\r|\n/);
  return { line: lines.length - 1, character: lines[lines.length - 1]!.length };
}

/**
 * Where each error of one file goes in its text: a pointer's value (or the key, see pointerRange),
 * a LINE:COL's character, or a LINE's whole line; lines out of range are clamped to the text.
 */
export function errorRanges(text: string, locs: ErrorLocation[]): { range: TextRange; message: string }[] {
  const lines = text.split(/\r\n|\r|\n/);
  return locs.map((loc) => {
    if (loc.pointer !== undefined) {
      const r = pointerRange(text, loc.pointer, loc.message);
      return { range: { start: positionAt(text, r.start), end: positionAt(text, r.end) }, message: loc.message };
    }
    const line = Math.min(Math.max((loc.line ?? 1) - 1, 0), lines.length - 1);
    const range = loc.col
      ? { start: { line, character: loc.col - 1 }, end: { line, character: loc.col } }
      : { start: { line, character: 0 }, end: { line, character: lines[line]!.length } };
    return { range, message: loc.message };
  });
}

/**
 * What the extension publishes for a file (the rule in diagnostics.ts): errors only the engine
 * reports always; schema mistakes only while no editor has the file open (the JSON language
 * service reports those while it is).
 */
export function toPublish<T>(schema: T[], engine: T[], _openInEditor: boolean): T[] {
  // Schema mistakes are errors the engine refuses, open or not (the JSON service lists them only
  // as warnings, without a fix): ours are errors, with the "did you mean" quick fix.
  return [...engine, ...schema];
}

/**
 * The quick fix of an "unknown key 'x' (did you mean 'y'?)" error: the key's text (its range, with
 * or without quotes) with the close name in its place; undefined for other messages.
 */
export function didYouMeanFix(message: string, keyText: string): { title: string; text: string } | undefined {
  const m = /unknown key '(.+?)' \(did you mean '(.+?)'\?\)/.exec(message);
  if (!m || !keyText.includes(m[1])) return undefined;
  return { title: `Change '${m[1]}' to '${m[2]}'`, text: keyText.replace(m[1], m[2]) };
}

// ---- what the schema cannot check ---------------------------------------------------------------

/** The sizes of the model a config is for (from its config.json): what targets are checked against. */
export interface ModelShape {
  layers: number;
  hidden: number;
  heads: number; // over all layers (pruned_heads taken off)
  ffn: number; // over all layers
  encoder: number; // encoder parameters (prune/budget.ts's count: what target_encoder_params is a share of)
  /** The classification model's parameters (what target_model_params is a share of), where config.json has them all. */
  model?: number;
}

const posInt = (x: unknown): x is number => typeof x === 'number' && Number.isInteger(x) && x > 0;

/** A checkpoint's config.json as a ModelShape; undefined when it is not a BERT config we can read. */
export function modelShapeOf(cfg: unknown): ModelShape | undefined {
  if (typeof cfg !== 'object' || cfg === null) return undefined;
  const c = cfg as Record<string, unknown>;
  const [L, H, A] = [c.num_hidden_layers, c.hidden_size, c.num_attention_heads];
  if (!posInt(L) || !posInt(H) || !posInt(A) || L > 100000) return undefined;
  const pruned = typeof c.pruned_heads === 'object' && c.pruned_heads !== null ? c.pruned_heads : {};
  const D = c.attention_head_size === undefined ? H / A : c.attention_head_size;
  if (!(typeof D === 'number' && D > 0)) return undefined;
  const heads: number[] = [];
  const ffn: number[] = [];
  const sizes = Array.isArray(c.intermediate_sizes) ? c.intermediate_sizes : undefined;
  for (let l = 0; l < L; l++) {
    const gone = (pruned as Record<string, unknown>)[String(l)];
    const removed = Array.isArray(gone) ? new Set(gone.filter((h) => Number.isInteger(h) && h >= 0 && h < A)).size : 0;
    heads.push(A - removed);
    const f = sizes ? sizes[l] : c.intermediate_size;
    if (!posInt(f)) return undefined;
    ffn.push(f);
  }
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  const encoder = encoderParamsOf({ heads, ffn, hidden: H, headSize: D });
  const shape: ModelShape = { layers: L, hidden: H, heads: sum(heads), ffn: sum(ffn), encoder };
  try {
    // the engine's own reading of a config.json (vocabulary, positions, labels), as the prune stage counts
    shape.model = modelParamsOf(checkConfigJson(cfg, 'config.json'));
  } catch {
    // a config.json the engine refuses: the prune stage says why; no whole-model check here
  }
  return shape;
}

/**
 * Mistakes in a prune config (or a settings file's prune section) that the schema cannot express
 * and the engine refuses (prune/config.ts checkTransformerTargets, prune/structured.ts
 * checkPruneTargets): two budgets (target_encoder_params and target_model_params); a count budget
 * (>= 1) that is not a whole number;
 * keep_shape with a budget, layer or hidden-size pruning; those with pruning_method 'masks'; and,
 * where the model is known, targets above what it has and a budget that keeps the whole encoder.
 * Each with the JSON pointer of the value at fault, as the engine writes them.
 */
export function configChecks(
  kind: 'prune' | 'settings',
  value: unknown,
  file: string,
  model?: ModelShape,
): ErrorLocation[] {
  const isObj = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
  const base = kind === 'prune' ? '/transformer' : '/prune/transformer';
  const root = isObj(value) ? value : undefined;
  const section = kind === 'prune' ? root : isObj(root?.prune) ? root.prune : undefined;
  const t = isObj(section?.transformer) ? section.transformer : undefined;
  if (!t) return [];
  const out: ErrorLocation[] = [];
  const at = (key: string, message: string) => out.push({ file, pointer: `${base}/${key}`, message });
  const budgets = budgetKeysIn(t);
  for (const p of budgetProblems(t)) {
    const v = t[p.key] as number;
    const hint =
      p.kind === 'not-whole'
        ? ` (0.15 keeps 15% of the ${BUDGET_COUNTS[p.key]}; ${Math.round(v)} keeps that many parameters)`
        : '';
    at(p.key, p.message + hint);
  }
  const deeper = [
    ...budgets,
    t.prune_layers === true && 'prune_layers',
    t.target_num_layers !== undefined && 'target_num_layers',
    t.prune_hidden === true && 'prune_hidden',
    t.target_hidden_size !== undefined && 'target_hidden_size',
  ].filter((k): k is string => !!k);
  if (t.keep_shape === true && deeper.length)
    at(
      'keep_shape',
      'keep_shape works with heads and FFN only (a budget, layers and the hidden size remove tensors): ' +
        `set it to false to prune with ${deeper.join(', ')}`,
    );
  if (t.pruning_method === 'masks' && deeper.length)
    at('pruning_method', `${deeper.join(', ')} need pruning_method 'iterative'`);
  if (model) {
    const { layers: L, hidden: H } = model;
    const n = (k: string) => (typeof t[k] === 'number' ? (t[k] as number) : undefined);
    const layers = n('target_num_layers');
    if (layers !== undefined && layers > L)
      at('target_num_layers', `${layers} is more than the model has (${L} layers)`);
    const hidden = n('target_hidden_size');
    if (hidden !== undefined && hidden > H)
      at('target_hidden_size', `${hidden} is more than the model has (hidden size ${H})`);
    const heads = n('target_num_of_heads');
    if (heads !== undefined && heads * L > model.heads)
      at(
        'target_num_of_heads',
        `${heads} is more than the model has ` +
          `(${model.heads} heads in ${L} layers, ${(model.heads / L).toFixed(2)} per layer)`,
      );
    const total: Record<BudgetKey, number | undefined> = {
      target_encoder_params: model.encoder,
      target_model_params: model.model,
    };
    for (const key of budgets) {
      const [target, has] = [t[key], total[key]];
      if (has === undefined || typeof target !== 'number' || !(target > 0 && (target < 1 || Number.isInteger(target))))
        continue;
      const met = budgetMet({ key, target }, has);
      if (met) at(key, `${target} ${met}`);
    }
    const ffn = n('target_ffn_size');
    if (ffn !== undefined && ffn * L > model.ffn)
      at(
        'target_ffn_size',
        `${ffn} is more than the model has (${(model.ffn / L).toFixed(1)} neurons per layer on average)`,
      );
  }
  return out;
}

// ---- a starting-point pruning config ------------------------------------------------------------

interface SchemaProp {
  default?: unknown;
}
export interface PruneSchema {
  definitions: { transformer: { properties: Record<string, SchemaProp> } };
}

/** The model sizes the targets are derived from (from the checkpoint's config.json). */
export interface ModelSize {
  num_attention_heads: number;
  intermediate_size: number;
  num_hidden_layers?: number;
}

/**
 * The kinds of new pruning config: targets per layer (heads, FFN), one budget for the encoder, or
 * one for the whole model (what is shipped).
 */
export type PruneTemplate = 'targets' | 'budget' | 'model-budget';

/** The budget a new budget config starts from: 15% of the unpruned encoder. */
export const TEMPLATE_BUDGET = 0.15;
/**
 * The whole-model budget a new config starts from: 30% of the unpruned model (on gaiic-deep about
 * what 15% of the encoder leaves, the embeddings, pooler and classifier being 16% of it).
 */
export const TEMPLATE_MODEL_BUDGET = 0.3;

/**
 * A pruning config to start from: every transformer option the schema defines with its default
 * value (so the user sees what can be set), and either targets of half the model's heads and FFN
 * ('targets') or one budget, 15% of the encoder ('budget') or 30% of the whole model
 * ('model-budget'), spent over heads, FFN, whole layers (where the model has more than one) and
 * the hidden size. It is strict JSON because the engine
 * reads configs with JSON.parse; the explanations live in the schema, and VS Code shows them on
 * hover and in completion.
 */
export function pruneConfigTemplate(
  schema: PruneSchema,
  model?: ModelSize,
  variant: PruneTemplate = 'targets',
): string {
  const transformer: Record<string, unknown> = {};
  if (variant === 'budget' || variant === 'model-budget') {
    if (variant === 'budget') transformer.target_encoder_params = TEMPLATE_BUDGET;
    else transformer.target_model_params = TEMPLATE_MODEL_BUDGET;
    transformer.prune_layers = (model?.num_hidden_layers ?? 2) > 1;
    transformer.prune_hidden = true;
  } else {
    // Half of what the model has (a config.json with other fields than these: BERT-base's halves).
    const half = (n: unknown, otherwise: number) => (posInt(n) ? Math.max(1, Math.floor(n / 2)) : otherwise);
    transformer.target_num_of_heads = half(model?.num_attention_heads, 6);
    transformer.target_ffn_size = half(model?.intermediate_size, 1536);
  }
  for (const [k, p] of Object.entries(schema.definitions.transformer.properties)) {
    if (k in transformer || p.default === undefined) continue;
    transformer[k] = p.default;
  }
  return JSON.stringify({ transformer }, null, 2) + '\n';
}
