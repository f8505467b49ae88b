// One engine run in a forked child process, as a small state machine:
//
//   starting --ready--> running --done/error--> finished
//       \                  \--cancel()--> cancelling --reply or grace timeout--> finished
//        \--exit / timeout before ready--> finished (crashed)
//
// Every run gets a fresh process that is killed when the run ends: a crash, a leak or a wedged
// backend cannot outlive its run, and cancel always has a last resort (kill). The outcome promise
// never rejects and always settles: on a reply, on the child's exit, or on a timeout.
//
// This module does not import 'vscode', so vitest drives it with a real forked fake engine.
import * as path from 'node:path';
import type { EngineEvent, EngineReply, EngineRequest, StageName } from '../engine/protocol';
import { isStageName } from '../engine/stages/registry';

/** The part of a ChildProcess this module uses (child_process.fork returns one). */
export interface ChildLike {
  send(message: EngineRequest, callback?: (error: Error | null) => void): boolean;
  kill(signal?: NodeJS.Signals): boolean;
  on(event: 'message', listener: (message: unknown) => void): unknown;
  on(event: 'exit', listener: (code: number | null, signal: NodeJS.Signals | null) => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
  readonly stdout?: NodeJS.ReadableStream | null;
  readonly stderr?: NodeJS.ReadableStream | null;
}

export type RunOutcome =
  | { status: 'done'; result: unknown }
  | { status: 'failed'; message: string; user: boolean }
  | { status: 'cancelled' }
  | { status: 'crashed'; message: string };

export type RunState = 'starting' | 'running' | 'cancelling' | 'finished';

export interface EngineRunOptions {
  onEvent?: (event: EngineEvent) => void;
  /** Raw text the child prints (stdout/stderr) and the client's own notes ('client'). */
  onLog?: (line: string, source: 'stdout' | 'stderr' | 'client') => void;
  /** How long the child may take to say 'ready' (it loads the tfjs backend). */
  readyTimeoutMs?: number;
  /** How long a cancelled run may take to stop (one step plus a checkpoint) before it is killed. */
  cancelGraceMs?: number;
}

export { isStageName };

const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);

/** Check a message from the child; anything that is not an EngineReply is undefined. */
export function parseEngineReply(x: unknown): EngineReply | undefined {
  if (!isObject(x) || typeof x.type !== 'string') return undefined;
  switch (x.type) {
    case 'ready':
      return x.backend === null || typeof x.backend === 'string' ? { type: 'ready', backend: x.backend } : undefined;
    case 'event':
      return typeof x.id === 'number' && isObject(x.event) && typeof x.event.type === 'string'
        ? { type: 'event', id: x.id, event: x.event as unknown as EngineEvent }
        : undefined;
    case 'done':
      return typeof x.id === 'number' ? { type: 'done', id: x.id, result: x.result } : undefined;
    case 'error':
      return typeof x.id === 'number' && typeof x.message === 'string'
        ? { type: 'error', id: x.id, message: x.message, user: x.user === true }
        : undefined;
    default:
      return undefined;
  }
}

let nextId = 1;

export class EngineRun {
  readonly id = nextId++;
  readonly outcome: Promise<RunOutcome>;
  private state: RunState = 'starting';
  private settle!: (o: RunOutcome) => void;
  private timers: NodeJS.Timeout[] = [];
  private stderrTail: string[] = [];

  constructor(
    private readonly child: ChildLike,
    readonly stage: StageName,
    readonly args: string[],
    private readonly opts: EngineRunOptions = {},
  ) {
    this.outcome = new Promise((resolve) => (this.settle = resolve));
    this.pipe(child.stdout, false);
    this.pipe(child.stderr, true);
    child.on('message', (m) => this.onMessage(m));
    child.on('error', (e) => this.finish({ status: 'crashed', message: `engine process error: ${e.message}` }));
    child.on('exit', (code, signal) => this.onExit(code, signal));
    this.timers.push(
      setTimeout(() => {
        if (this.state === 'starting')
          this.finish({
            status: 'crashed',
            message: `the engine did not start within ${(opts.readyTimeoutMs ?? 60_000) / 1000} s`,
          });
      }, opts.readyTimeoutMs ?? 60_000),
    );
  }

  get current(): RunState {
    return this.state;
  }

  /** Ask the engine to stop after the current step; kill it if it does not within the grace period. */
  cancel(): void {
    if (this.state === 'finished' || this.state === 'cancelling') return;
    const wasStarting = this.state === 'starting';
    this.state = 'cancelling';
    if (wasStarting) {
      // Nothing is running yet: no checkpoint to protect.
      this.finish({ status: 'cancelled' });
      return;
    }
    this.trySend({ type: 'cancel', id: this.id });
    const grace = this.opts.cancelGraceMs ?? 30_000;
    this.timers.push(
      setTimeout(() => {
        this.log(`engine did not stop within ${grace / 1000} s of the cancel: killing it`);
        this.finish({ status: 'cancelled' });
      }, grace),
    );
  }

  /** Kill the process (extension deactivation). */
  dispose(): void {
    this.finish({ status: 'cancelled' });
  }

  private onMessage(raw: unknown): void {
    const m = parseEngineReply(raw);
    if (!m) {
      this.log(`ignored a malformed message from the engine: ${safeJson(raw)}`);
      return;
    }
    if (m.type === 'ready') {
      if (this.state !== 'starting') return;
      this.state = 'running';
      if (m.backend) this.log(`engine ready (backend ${m.backend})`);
      this.trySend({ type: 'run', id: this.id, stage: this.stage, args: this.args });
      return;
    }
    if (m.id !== this.id) return; // a reply to some other request: not ours
    if (m.type === 'event') this.opts.onEvent?.(m.event);
    else if (m.type === 'done') this.finish({ status: 'done', result: m.result });
    else if (this.state === 'cancelling' || /^cancel/i.test(m.message)) this.finish({ status: 'cancelled' });
    else this.finish({ status: 'failed', message: m.message, user: m.user });
  }

  private onExit(code: number | null, signal: NodeJS.Signals | null): void {
    if (this.state === 'finished') return;
    if (this.state === 'cancelling') {
      this.finish({ status: 'cancelled' });
      return;
    }
    const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
    const tail = this.stderrTail.length ? `\n${this.stderrTail.join('\n')}` : '';
    this.finish({ status: 'crashed', message: `the engine process ${how} during ${this.stage}${tail}` });
  }

  private finish(o: RunOutcome): void {
    if (this.state === 'finished') return;
    this.state = 'finished';
    for (const t of this.timers) clearTimeout(t);
    this.timers = [];
    // The process is per run: whatever it is doing now, it is no longer needed.
    try {
      this.child.kill('SIGKILL');
    } catch {
      // already gone
    }
    this.settle(o);
  }

  private trySend(req: EngineRequest): void {
    try {
      this.child.send(req, (err) => {
        if (err) this.finish({ status: 'crashed', message: `could not talk to the engine process: ${err.message}` });
      });
    } catch (e) {
      this.finish({ status: 'crashed', message: `could not talk to the engine process: ${(e as Error).message}` });
    }
  }

  private pipe(stream: NodeJS.ReadableStream | null | undefined, isErr: boolean): void {
    if (!stream) return;
    let buf = '';
    stream.on('data', (chunk: Buffer | string) => {
      buf += chunk.toString();
      const lines = buf.split(/\r?\n/);
      buf = lines.pop() ?? '';
      for (const line of lines) {
        if (isErr) this.stderrTail = [...this.stderrTail, line].slice(-20);
        this.opts.onLog?.(line, isErr ? 'stderr' : 'stdout');
      }
    });
  }

  private log(line: string): void {
    this.opts.onLog?.(`[bert-pruner] ${line}`, 'client');
  }
}

function safeJson(x: unknown): string {
  try {
    return JSON.stringify(x).slice(0, 200);
  } catch {
    return String(x);
  }
}

/**
 * The engine process gets only the environment it needs: paths, locale, thread and library
 * settings, the engine's own BERT_PRUNER_* switches and what TensorFlow / CUDA read. Nothing else
 * from the editor's environment (tokens, NODE_OPTIONS that could inject code) reaches it.
 */
const ENV_KEEP =
  /^(PATH|HOME|USERPROFILE|TMPDIR|TMP|TEMP|SystemRoot|SYSTEMROOT|windir|LANG|LC_ALL|LD_LIBRARY_PATH|DYLD_LIBRARY_PATH|OMP_NUM_THREADS|OPENBLAS_\w+|BERT_PRUNER_\w+|TF_\w+|CUDA_\w+)$/;

/** Search-path lists: an empty entry (`a::b`, a leading or trailing separator) means the cwd. */
const PATH_LISTS = new Set(['PATH', 'LD_LIBRARY_PATH', 'DYLD_LIBRARY_PATH']);
/** Single files the engine loads or runs; '0' and '1' are switches, not paths. */
const FILE_VARS = new Set(['BERT_PRUNER_NATIVE', 'BERT_PRUNER_TORCH_PYTHON']);

/**
 * The engine runs with the workspace folder as its cwd, so anything relative in its environment
 * would resolve inside the workspace: search-path lists lose their empty and relative entries
 * (a list left empty is dropped), and a relative BERT_PRUNER_NATIVE (or torch python) is dropped.
 */
export function sanitizeEnvPaths(env: NodeJS.ProcessEnv, p: path.PlatformPath = path): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) continue;
    if (PATH_LISTS.has(k)) {
      const entries = v.split(p.delimiter).filter((e) => e !== '' && p.isAbsolute(e));
      if (entries.length > 0) out[k] = entries.join(p.delimiter);
    } else if (FILE_VARS.has(k)) {
      if (v === '0' || v === '1' || p.isAbsolute(v)) out[k] = v;
    } else {
      out[k] = v;
    }
  }
  return out;
}

/** Control characters (a NUL makes fork throw) have no place in an adapter's name. */
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/g;

/** What the extension's settings add to the engine's environment. */
export interface EngineEnvSettings {
  /**
   * bertPruner.webgpuAdapter: part of the WebGPU adapter's name, passed as
   * BERT_PRUNER_WEBGPU_ADAPTER (it replaces one inherited from the editor's environment). Empty:
   * nothing is added, and an inherited value stays.
   */
  webgpuAdapter?: string;
}

export function engineEnv(env: NodeJS.ProcessEnv, s: EngineEnvSettings = {}): NodeJS.ProcessEnv {
  const kept = Object.fromEntries(Object.entries(env).filter(([k]) => ENV_KEEP.test(k)));
  const adapter = typeof s.webgpuAdapter === 'string' ? s.webgpuAdapter.replace(CONTROL, '').trim() : '';
  // Inside VS Code the engine runs on VS Code's own Electron binary, in node mode.
  return {
    ...sanitizeEnvPaths(kept),
    ...(adapter ? { BERT_PRUNER_WEBGPU_ADAPTER: adapter } : {}),
    ELECTRON_RUN_AS_NODE: '1',
  };
}
