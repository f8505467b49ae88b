// Sizes are bounded (security issue, item 4) and config.json fields are checked (item 5): the
// CLI's numeric options, the schemas' maxima, a checkpoint's config.json, the memory estimate
// made before any weights are allocated, and stages left 'running' by a dead process.
import { spawn, spawnSync } from 'node:child_process';
import { pidReused, processStartMs, recordedProcessGone } from '../src/engine/io/process';
import { anyProcessGone, pipelineResumable, runningPids, runView } from '../src/extension/runModel';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { parse, runCommand } from '../src/engine/commands';
import { SCHEMAS, validateConfig } from '../src/engine/config/validate';
import { loadRun, openRun, reapDeadStages, saveRun, updateStage, type RunManifest } from '../src/engine/io/run';
import { checkConfigJson, MODEL_LIMITS } from '../src/engine/model/config';
import { checkMemory, estimateMemory, WASM_HEAP_BYTES } from '../src/engine/model/memory';
import { userError, userErrorAsync } from './helpers/errors';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'limits-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('numeric CLI options have bounds (OptionDef min/max, checked by the parser)', () => {
  it('refuses demo-data --train-rows 1e9 before generating anything', async () => {
    const out = path.join(tmp, 'demo-huge');
    const args = ['--out', out, '--train-rows', '1e9'];
    const msg = await userErrorAsync(() => runCommand('demo-data', args, { emit: () => {} }));
    expect(msg).toBe('--train-rows: 1e9 is above the largest allowed, 1000000');
    expect(fs.existsSync(out)).toBe(false);
  });

  it('refuses --train-rows 2.5 and 0 with one line, accepts the bounds themselves', () => {
    const rows = (n: string) => ['--out', 'x', '--train-rows', n];
    expect(userError(() => parse('demo-data', rows('2.5')))).toBe("--train-rows: '2.5' is not a whole number");
    expect(userError(() => parse('demo-data', rows('0')))).toBe('--train-rows: 0 is below the smallest allowed, 1');
    expect(parse('demo-data', rows('1000000'))['train-rows']).toBe(1_000_000);
    const seqLen = ['--model', 'm', '--seq-len', '100000'];
    expect(userError(() => parse('analyze', seqLen))).toMatch(/^--seq-len: 100000 is above/);
  });
});

describe('schemas have maxima that still admit real models', () => {
  it('refuses a settings file with hidden_size 1e6 and a prune config with n_iters 1e9, naming the field', () => {
    expect(userError(() => validateConfig('settings', { model: { hidden_size: 1e6 } }, 'big.json'))).toBe(
      'big.json: /model/hidden_size: must be integer >= 1 and <= 8192, got 1000000',
    );
    expect(userError(() => validateConfig('settings', { model: { num_hidden_layers: 1e9 } }, 'big.json'))).toMatch(
      /^big\.json: \/model\/num_hidden_layers: must be integer >= 1 and <= 128/,
    );
    const prune = { transformer: { target_ffn_size: 64, target_num_of_heads: 2, n_iters: 1e9 } };
    expect(userError(() => validateConfig('prune', prune, 'x.prune.json'))).toMatch(
      /x\.prune\.json: \/transformer\/n_iters: must be integer >= 1 and <= 1000/,
    );
  });

  it('admits BERT-large and a 250k vocabulary; the schema maxima are the engine limits', () => {
    const large = {
      hidden_size: 1024,
      num_hidden_layers: 24,
      num_attention_heads: 16,
      intermediate_size: 4096,
      max_position_embeddings: 512,
      max_len: 512,
    };
    expect(() => validateConfig('settings', { model: large }, 'large.json')).not.toThrow();
    type Props = Record<string, { properties: Record<string, { maximum?: number }> }>;
    const model = (SCHEMAS.settings.properties as Props).model.properties;
    for (const k of Object.keys(large) as (keyof typeof large)[]) {
      expect(model[k].maximum, k).toBe(MODEL_LIMITS[k]);
    }
    expect(() => checkConfigJson({ ...large, vocab_size: 250_002 }, 'config.json')).not.toThrow();
  });
});

describe("a checkpoint's config.json: every field we read is type- and range-checked", () => {
  const base = {
    vocab_size: 100,
    hidden_size: 32,
    num_hidden_layers: 2,
    num_attention_heads: 2,
    intermediate_size: 64,
    max_position_embeddings: 64,
  };

  it('layer_norm_eps "x" is one line naming the file and field, not an internal error', () => {
    expect(userError(() => checkConfigJson({ ...base, layer_norm_eps: 'x' }, 'ck/config.json'))).toBe(
      `ck/config.json: 'layer_norm_eps' must be a number > 0 and < 1, got "x"`,
    );
  });

  it('a huge value is quoted shortened, in one line of readable size (config.json and the schemas)', () => {
    const id2label = Object.fromEntries(Array.from({ length: 200_000 }, (_, i) => [String(i), `L${i}`]));
    const m = userError(() => checkConfigJson({ ...base, id2label }, 'ck/config.json'));
    expect(m).toMatch(/^ck\/config\.json: 'id2label' must be .*, got \{"0":"L0",.*\.\.\. \(\d+ characters\)$/);
    expect(m.length).toBeLessThan(300);
    const s = userError(() =>
      validateConfig('prune', { transformer: { n_iters: 'y'.repeat(100_000) } }, 'p.prune.json'),
    );
    expect(s).toMatch(/\/transformer\/n_iters: must be integer .*, got "y+\.\.\. \(100002 characters\)/);
    expect(s.length).toBeLessThan(400);
  });

  it.each([
    ['num_hidden_layers', 1e9],
    ['hidden_size', 1e6],
    ['vocab_size', 2.5],
    ['type_vocab_size', -1],
    ['hidden_dropout_prob', 1],
    ['initializer_range', null],
    ['pad_token_id', 100],
    ['max_len', '128'],
    ['architectures', 'BertModel'],
    ['hidden_act', 'relu'],
    ['pruned_heads', []],
    ['intermediate_sizes', [64, 'x']],
    ['id2label', 3],
  ])('refuses %s = %j', (key, value) => {
    expect(userError(() => checkConfigJson({ ...base, [key]: value }, 'ck/config.json'))).toMatch(
      new RegExp(`^ck/config\\.json: '?${key}`),
    );
  });

  it('allows unknown keys (Hub configs carry many) and fills the HF defaults', () => {
    const cfg = checkConfigJson({ ...base, transformers_version: '4.40.0', gradient_checkpointing: false }, 'c.json');
    expect(cfg.layer_norm_eps).toBe(1e-12);
    expect(cfg.pruned_heads).toEqual({});
  });
});

describe('the memory estimate, before any weights are allocated', () => {
  const BASE = {
    vocab_size: 30522,
    hidden_size: 768,
    num_hidden_layers: 12,
    num_attention_heads: 12,
    intermediate_size: 3072,
    max_position_embeddings: 512,
  };
  const LARGE = { ...BASE, hidden_size: 1024, num_hidden_layers: 24, num_attention_heads: 16, intermediate_size: 4096 };
  afterEach(() => {
    delete process.env.BERT_PRUNER_MEMORY_MB;
  });

  it('counts BERT-base and BERT-large parameters', () => {
    expect(estimateMemory(BASE, { mode: 'infer', batch: 1, seqLen: 128 }).params / 1e6).toBeCloseTo(110, -1);
    expect(estimateMemory(LARGE, { mode: 'infer', batch: 1, seqLen: 128 }).params / 1e6).toBeCloseTo(336, -1);
  });

  it("fits BERT-base inference in wasm's heap; refuses training BERT-large there, naming the file and field", () => {
    const where = { shape: 'ck/config.json' };
    expect(() => checkMemory(BASE, { mode: 'infer', batch: 1, seqLen: 128 }, 'wasm', where)).not.toThrow();
    const msg = userError(() => checkMemory(LARGE, { mode: 'train', batch: 1, seqLen: 128 }, 'wasm+openblas', where));
    expect(msg).toMatch(/^ck\/config\.json: hidden_size: the model needs about [\d.]+ GiB /);
    expect(msg).toMatch(/ but the wasm backend's 4\.0 GiB heap holds less/);
    expect(msg).not.toContain('\n');
    expect(WASM_HEAP_BYTES).toBe(4 * 1024 ** 3);
  });

  it('names the batch size when activations dominate', () => {
    const where = { shape: 's.json', prefix: 'model.', batch: 's.json: finetune.batch_size' };
    const msg = userError(() => checkMemory(BASE, { mode: 'train', batch: 4096, seqLen: 512 }, 'cpu', where));
    expect(msg).toMatch(/^s\.json: finetune\.batch_size: the model needs/);
  });

  it('pretrain refuses a settings file whose model does not fit, before the run is touched', async () => {
    process.env.BERT_PRUNER_MEMORY_MB = '512';
    const cfgFile = path.join(tmp, 'wide.bert-pruner.json');
    const model = { hidden_size: 4096, num_hidden_layers: 64, num_attention_heads: 64, intermediate_size: 16384 };
    fs.writeFileSync(cfgFile, JSON.stringify({ model }));
    const run = path.join(tmp, 'run-wide');
    const args = ['--run', run, '--config', cfgFile, '--backend', 'cpu'];
    const msg = await userErrorAsync(() => runCommand('pretrain', args, { emit: () => {} }));
    expect(msg.startsWith(`${cfgFile}: model.num_hidden_layers: the model needs about `)).toBe(true);
    expect(msg).toMatch(/but BERT_PRUNER_MEMORY_MB \(512 MiB\) holds less/);
    expect(fs.existsSync(run)).toBe(false);
  });
});

describe('a stage whose process died is not left "running"', () => {
  /** The pid of a process that has exited. */
  const deadPid = (): number => {
    const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    return Number(r.stdout);
  };

  it('records pid and host when a stage starts', () => {
    const dir = path.join(tmp, 'run-pid');
    updateStage(dir, 'pretrain', { status: 'running', started: new Date().toISOString() });
    const s = loadRun(dir).stages.pretrain;
    expect(s.pid).toBe(process.pid);
    expect(s.host).toBe(os.hostname());
  });

  it('the next command that opens the run marks a dead one failed; live, foreign and old records stay', () => {
    const dir = path.join(tmp, 'run-dead');
    const m = openRun(dir);
    const started = new Date(Date.now() - 5000).toISOString();
    const pid = deadPid();
    m.stages = {
      pretrain: { status: 'running', started, pid, host: os.hostname(), epochsDone: 1 },
      live: { status: 'running', started, pid: process.pid, host: os.hostname() },
      elsewhere: { status: 'running', started, pid, host: `${os.hostname()}-other` },
      old: { status: 'running', started },
    } as RunManifest['stages'];
    saveRun(dir, m);
    const opened = openRun(dir);
    const p = opened.stages.pretrain;
    expect(p.status).toBe('failed');
    expect(p.error).toMatch(new RegExp(`^the process \\(pid ${pid} on .*\\) ended without finishing this stage`));
    expect(p.error).toMatch(/--resume continues it$/);
    expect(p.epochsDone).toBe(1); // --resume continues from it
    expect(p.seconds).toBeGreaterThan(4);
    expect(loadRun(dir).stages.pretrain.status).toBe('failed'); // written back
    for (const k of ['live', 'elsewhere', 'old']) expect(opened.stages[k].status, k).toBe('running');
    expect(reapDeadStages(loadRun(dir))).toEqual([]);
  });

  it('starting another stage in the run reaps the dead one too', () => {
    const dir = path.join(tmp, 'run-dead2');
    const m = openRun(dir);
    m.stages.finetune = { status: 'running', started: new Date().toISOString(), pid: deadPid(), host: os.hostname() };
    saveRun(dir, m);
    updateStage(dir, 'evaluate', { status: 'running' });
    expect(loadRun(dir).stages.finetune.status).toBe('failed');
  });

  it.runIf(process.platform === 'linux')(
    'a pid that another process got again counts as gone (a restart, pids wrapped)',
    async () => {
      // This process's start time, from /proc, agrees with its uptime.
      expect(Math.abs(processStartMs(process.pid)! - (Date.now() - process.uptime() * 1000))).toBeLessThan(2000);
      const child = spawn('sleep', ['30']);
      try {
        await new Promise((r) => setTimeout(r, 100));
        const pid = child.pid!;
        const hourAgo = new Date(Date.now() - 3600_000).toISOString();
        // Recorded an hour ago by another process: whoever holds the pid now started later.
        expect(pidReused(pid, hourAgo)).toBe(true);
        expect(recordedProcessGone(pid, os.hostname(), hourAgo)).toBe(true);
        expect(
          runView(path.join(tmp, 'run-reused'), {
            stages: { pretrain: { status: 'running', started: hourAgo, pid, host: os.hostname() } },
          }).stages[0].status,
        ).toBe('failed');
        // Recorded by this very process (started before the record): alive.
        const now = new Date().toISOString();
        expect(pidReused(pid, now)).toBe(false);
        expect(recordedProcessGone(pid, os.hostname(), now)).toBe(false);
        expect(recordedProcessGone(pid, os.hostname())).toBe(false); // no time: the pid alone decides
      } finally {
        child.kill();
      }
    },
  );

  it('the Runs tree shows a dead one failed and resumable before any command opens the run', () => {
    const dir = path.join(tmp, 'run-dead-tree');
    const started = new Date().toISOString();
    const pid = deadPid();
    const manifest = {
      name: 'run-dead-tree',
      pipeline: { steps: ['pretrain', 'finetune'] },
      stages: {
        pretrain: { status: 'running', started, pid, host: os.hostname() },
        live: { status: 'running', started, pid: process.pid, host: os.hostname() },
        elsewhere: { status: 'running', started, pid, host: `${os.hostname()}-other` },
      },
    };
    const v = runView(dir, manifest);
    const by = new Map(v.stages.map((s) => [s.key, s]));
    expect(by.get('pretrain')?.status).toBe('failed');
    expect(by.get('pretrain')?.error).toMatch(
      new RegExp(`^the process \\(pid ${pid} on .*\\) ended without finishing`),
    );
    for (const k of ['live', 'elsewhere']) expect(by.get(k)?.status, k).toBe('running');
    // Resume is offered once nothing still runs.
    expect(pipelineResumable(v)).toBe(false); // 'live' runs
    delete (manifest.stages as Record<string, unknown>).live;
    delete (manifest.stages as Record<string, unknown>).elsewhere;
    expect(pipelineResumable(runView(dir, manifest))).toBe(true);
  });

  it("the Runs tree's poll sees a stage's process end without a word (kill -9)", async () => {
    const child = spawn('sleep', ['30']);
    await new Promise((r) => setTimeout(r, 100));
    const pid = child.pid!;
    const manifest = {
      stages: { pretrain: { status: 'running', started: new Date().toISOString(), pid, host: os.hostname() } },
    };
    const dir = path.join(tmp, 'run-watched');
    const before = runView(dir, manifest);
    expect(before.stages[0].status).toBe('running');
    expect(runningPids([before])).toEqual([pid]);
    expect(anyProcessGone([pid])).toBe(false);
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    expect(anyProcessGone([pid])).toBe(true); // the poll refreshes the tree
    expect(runView(dir, manifest).stages[0].status).toBe('failed');
    // Another host's stage is not watched (its pid means nothing here).
    const foreign = runView(dir, { stages: { pretrain: { ...manifest.stages.pretrain, host: 'elsewhere' } } });
    expect(runningPids([foreign])).toEqual([]);
  });
});
