import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  CLASSIFIER,
  EMB_LN,
  LAYER_PART_NAMES,
  layer,
  layerOf,
  MLM_BIAS,
  MLM_DECODER_W,
  MLM_DENSE,
  MLM_LN,
  parseName,
  POOLER,
  POS_EMB,
  TYPE_EMB,
  WORD_EMB,
} from '../src/engine/model/names';
import { paramShapes } from '../src/engine/model/params';
import { tinyConfig } from './helpers/tiny';
import { tsFiles } from './helpers/files';

const SRC = path.join(__dirname, '..', 'src');

describe('HF parameter names (model/names.ts)', () => {
  it('are the HF names, and every one round-trips through the parser', () => {
    expect(WORD_EMB).toBe('bert.embeddings.word_embeddings.weight');
    expect(layer(3).attnOut.weight).toBe('bert.encoder.layer.3.attention.output.dense.weight');
    expect(layer(0).query.bias).toBe('bert.encoder.layer.0.attention.self.query.bias');
    expect(CLASSIFIER.weight).toBe('classifier.weight');
    expect(MLM_BIAS).toBe('cls.predictions.bias');
    for (const l of [0, 1, 11]) {
      for (const part of LAYER_PART_NAMES) {
        expect(parseName(layer(l)[part].weight)).toEqual({ layer: l, part, tensor: 'weight' });
        expect(parseName(layer(l)[part].bias)).toEqual({ layer: l, part, tensor: 'bias' });
      }
      expect(layerOf(layer(l).prefix + 'anything')).toBe(l);
    }
    expect(parseName(WORD_EMB)).toEqual({ layer: null, part: 'wordEmb', tensor: null });
    expect(parseName(POS_EMB)?.part).toBe('posEmb');
    expect(parseName(TYPE_EMB)?.part).toBe('typeEmb');
    expect(parseName(MLM_DECODER_W)?.part).toBe('mlmDecoder');
    expect(parseName(MLM_BIAS)?.part).toBe('mlmBias');
    const modules = [
      [EMB_LN, 'embLn'],
      [POOLER, 'pooler'],
      [CLASSIFIER, 'classifier'],
      [MLM_DENSE, 'mlmDense'],
      [MLM_LN, 'mlmLn'],
    ] as const;
    for (const [m, part] of modules) {
      expect(parseName(m.weight)).toEqual({ layer: null, part, tensor: 'weight' });
      expect(parseName(m.bias)).toEqual({ layer: null, part, tensor: 'bias' });
    }
    const bad = ['', 'classifier', 'bert.encoder.layer.x.out.dense.weight', 'bert.encoder.layer.1.x.weight'];
    for (const n of bad) {
      expect(parseName(n), n).toBeNull();
    }
    expect(layerOf('bert.encoder.layer.x.output.dense.weight')).toBeNull();
    expect(layerOf(WORD_EMB)).toBeNull();
  });

  it('every parameter of a tiny model (both heads, uneven layers) parses, and names are unique', () => {
    const cfg = tinyConfig({ num_hidden_layers: 3, pruned_heads: { '1': [0, 2] }, intermediate_sizes: [24, 8, 16] });
    const names = paramShapes(cfg, { mlm: true, classifier: true }).map(([n]) => n);
    expect(new Set(names).size).toBe(names.length);
    for (const n of names) expect(parseName(n), n).not.toBeNull();
    expect(names.filter((n) => parseName(n)!.layer === 2)).toHaveLength(16); // 8 modules x weight/bias
  });

  it('no other file under src/ spells a parameter name', () => {
    const literal = /bert\.encoder\.layer|bert\.embeddings|bert\.pooler|cls\.predictions|'classifier\.|'cls\.'/;
    const offenders: string[] = [];
    for (const f of tsFiles(SRC)) {
      if (path.relative(SRC, f) === path.join('engine', 'model', 'names.ts')) continue;
      fs.readFileSync(f, 'utf8')
        .split('\n')
        .forEach((line, i) => {
          if (literal.test(line)) offenders.push(`${path.relative(SRC, f)}:${i + 1}: ${line.trim()}`);
        });
    }
    expect(offenders).toEqual([]);
  });
});
