// The extension and a hostile folder (security issue, item 5): a safetensors header with tens of
// thousands of layer-like names, a run.json whose paths point outside its run folder, and names or
// errors that would be Markdown in a tooltip.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readSafetensorsHeader, readSafetensorsHeaderAsync, writeSafetensors } from '../src/engine/io/safetensors';
import { buildParamTree, indexTree, type TensorInfo } from '../src/extension/paramTree';
import {
  insideRun,
  readCheckpoint,
  readCheckpointAsync,
  runTooltip,
  runView,
  stageTooltip,
} from '../src/extension/runModel';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ext-limits-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('the parameter tree of a header with many layer-like names', () => {
  it('is built in one pass: 50 000 layers of names (a minute per 20 000 before; quadratic)', () => {
    // A bound on the complexity, not a timing test: the former per-layer rescans of every tensor
    // took 65 s for 20 000 names on the 2-core test machine, so 50 000 did not finish in the
    // test's 120 s; one pass takes well under a second.
    const header: Record<string, TensorInfo> = {};
    const N = 50_000;
    for (let i = 0; i < N; i++) {
      const t: TensorInfo = { dtype: 'F32', shape: [2, 4], data_offsets: [32 * i, 32 * i + 32] };
      header[`bert.encoder.layer.${i}.attention.self.query.weight`] = t;
    }
    // Not any layer's name (a layer is 'layer.1.', not 'layer.01.'):
    header['bert.encoder.layer.01.x'] = { dtype: 'F32', shape: [1], data_offsets: [32 * N, 32 * N + 4] };
    const t0 = Date.now();
    const tree = buildParamTree({ hidden_size: 4, num_hidden_layers: 2, num_attention_heads: 2 }, header);
    expect(Date.now() - t0).toBeLessThan(30_000);
    const encoder = tree.children.find((c) => c.id === 'encoder')!;
    expect(encoder.children).toHaveLength(N);
    expect(encoder.children[N - 1].layer).toEqual({ index: N - 1, headsKept: 1, headsTotal: 2, ffn: 0 });
    const other = tree.children.find((c) => c.id === 'other')!;
    expect(other.children.map((c) => c.label)).toEqual(['bert.encoder.layer.01.x']);
    expect(tree.params).toBe(8 * N + 1);
    expect(indexTree(tree).get('encoder/layer 7/attention/self.query.weight')?.params).toBe(8);
  });

  it('reads the header asynchronously (off the extension host thread) with the same result and errors', async () => {
    const dir = path.join(tmp, 'ck');
    fs.mkdirSync(dir);
    const config = { hidden_size: 4, num_hidden_layers: 1, num_attention_heads: 2 };
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config));
    writeSafetensors(path.join(dir, 'model.safetensors'), [
      { name: 'bert.embeddings.word_embeddings.weight', shape: [3, 4], data: new Float32Array(12) },
      { name: 'bert.encoder.layer.0.attention.self.query.weight', shape: [4, 4], data: new Float32Array(16) },
      { name: 'bert.encoder.layer.0.intermediate.dense.weight', shape: [8, 4], data: new Float32Array(32) },
      { name: 'classifier.bias', shape: [17], data: new Float32Array(17) },
    ]);
    const sync = readCheckpoint(dir, readSafetensorsHeader);
    expect(sync.tree?.params).toBe(12 + 16 + 32 + 17);
    expect(await readCheckpointAsync(dir, readSafetensorsHeaderAsync)).toEqual(sync);
    fs.writeFileSync(path.join(dir, 'model.safetensors'), Buffer.from([1, 2, 3]));
    const broken = await readCheckpointAsync(dir, readSafetensorsHeaderAsync);
    expect(broken.error).toBe(readCheckpoint(dir, readSafetensorsHeader).error);
    const none = await readCheckpointAsync(path.join(tmp, 'none'), readSafetensorsHeaderAsync);
    expect(none.error).toMatch(/config\.json/);
  });
});

describe('run.json paths outside the run folder are not followed', () => {
  it('drops an absolute checkpoint and a ../ report, and says so', () => {
    const dir = path.join(tmp, 'runs', 'r1');
    const v = runView(dir, {
      stages: {
        finetune: { status: 'done', checkpoint: '/home/someone/.ssh', report: '../../x/report.json' },
        prune: { status: 'done', checkpoint: 'prune', report: 'prune/prune-report.json' },
        evaluate: { status: 'done', checkpoint: 'C:\\Windows', report: 'a/../../r1x/y.json' },
      },
    });
    const by = Object.fromEntries(v.stages.map((s) => [s.key, s]));
    expect(by.finetune.checkpoint).toBeUndefined();
    expect(by.finetune.report).toBeUndefined();
    expect(by.finetune.error).toBe(
      [
        "run.json: finetune.checkpoint '/home/someone/.ssh' points outside the run folder; not followed",
        "run.json: finetune.report '../../x/report.json' points outside the run folder; not followed",
      ].join('\n'),
    );
    expect(by.prune.checkpoint).toBe(path.resolve(dir, 'prune'));
    expect(by.prune.report).toBe(path.resolve(dir, 'prune/prune-report.json'));
    expect(by.evaluate.checkpoint).toBeUndefined();
    expect(by.evaluate.report).toBeUndefined();
    expect(insideRun(dir, '.')).toBe(path.resolve(dir));
    expect(insideRun(dir, '')).toBeUndefined();
  });
});

describe('tree tooltips are plain text, not Markdown', () => {
  it('shows names and errors verbatim', () => {
    const name = '[click me](command:workbench.action.terminal.new) **bold** <img src=x>';
    const stages = { pretrain: { status: 'failed', error: '`x` [y](https://e.invalid)' } };
    const v = runView(path.join(tmp, 'runs', 'md'), { name, stages });
    expect(runTooltip(v, 'runs/md').split('\n')[0]).toBe(name);
    expect(stageTooltip(v.stages[0])).toBe('pretrain: failed\n`x` [y](https://e.invalid)');
  });

  it('runsTree.ts builds no MarkdownString', () => {
    const src = fs.readFileSync(path.join(__dirname, '..', 'src', 'extension', 'runsTree.ts'), 'utf8');
    expect(src).not.toMatch(/new vscode\.MarkdownString/);
  });
});

describe('oversized files a hostile folder can ship', () => {
  it('a run.json over 8 MB is not read; a huge history.jsonl is read from its last whole line on', async () => {
    const { readRun, readTail, MAX_RUN_JSON_BYTES } = await import('../src/extension/runModel');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bp-big-'));
    fs.writeFileSync(path.join(dir, 'run.json'), Buffer.alloc(MAX_RUN_JSON_BYTES + 1, 0x20));
    expect(readRun(dir).error).toMatch(/run\.json is 8 MB, more than a run\.json can be; not read/);
    const hist = path.join(dir, 'history.jsonl');
    fs.writeFileSync(hist, Array.from({ length: 1000 }, (_, i) => `{"i":${i}}`).join('\n') + '\n');
    const notes: string[] = [];
    const tail = readTail(hist, 100, (mb) => notes.push(mb));
    expect(notes).toHaveLength(1);
    const lines = tail.trim().split('\n');
    expect(lines.every((l) => /^\{"i":\d+\}$/.test(l))).toBe(true);
    expect(lines[lines.length - 1]).toBe('{"i":999}');
    expect(readTail(hist, 1 << 20, () => notes.push('x'))).toBe(fs.readFileSync(hist, 'utf8'));
    expect(notes).toHaveLength(1);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
