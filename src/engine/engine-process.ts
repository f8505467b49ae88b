// The forked engine process: the extension host forks dist/engine.js and talks the protocol of
// protocol.ts over IPC. One command at a time; `cancel` aborts it between two training steps.
// A user error comes back as {type: 'error', user: true} with its message only.
import { runCommand } from './commands';
import { explainSystemError, isUserError } from './errors';
import type { EngineReply, EngineRequest } from './protocol';

const send = (m: EngineReply) => process.send?.(m);
let current: { id: number; controller: AbortController } | null = null;

async function handle(req: EngineRequest): Promise<void> {
  if (req.type === 'cancel') {
    if (current && current.id === req.id) current.controller.abort();
    return;
  }
  if (req.type !== 'run') return;
  if (current) {
    send({ type: 'error', id: req.id, message: `the engine is busy with request ${current.id}`, user: true });
    return;
  }
  const controller = new AbortController();
  current = { id: req.id, controller };
  try {
    const { result } = await runCommand(req.stage, req.args, {
      emit: (event) => send({ type: 'event', id: req.id, event }),
      signal: controller.signal,
    });
    send({ type: 'done', id: req.id, result: JSON.parse(JSON.stringify(result ?? null)) });
  } catch (err) {
    const e = explainSystemError(err);
    const user = isUserError(e);
    send({ type: 'error', id: req.id, message: user ? (e as Error).message : String((e as Error)?.stack ?? e), user });
  } finally {
    current = null;
  }
}

if (process.send) {
  process.on('message', (m) => void handle(m as EngineRequest));
  // The extension host going away must not leave a training process behind.
  process.on('disconnect', () => process.exit(0));
  send({ type: 'ready', backend: null });
}
