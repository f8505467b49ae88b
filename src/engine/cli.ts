// The command-line shell: `bert-pruner <command> [options]`. Prints events as progress (or as
// JSON lines with --json-events), prints user errors as one message without a stack trace, and
// turns Ctrl-C into a clean cancel (a second Ctrl-C exits at once).
import { overview, runCommand } from './commands';
import { explainSystemError, isUserError } from './errors';
import { table } from './format';
import type { EngineEvent } from './protocol';

/** Human-readable progress on stderr: one rewritten line on a terminal, a line per epoch otherwise. */
function printer(json: boolean) {
  const tty = process.stderr.isTTY;
  let lastStep = 0;
  let open = false;
  const clear = () => {
    if (open) process.stderr.write('\n');
    open = false;
  };
  return (e: EngineEvent) => {
    if (json) {
      process.stdout.write(JSON.stringify(e) + '\n');
      return;
    }
    switch (e.type) {
      case 'log':
        clear();
        process.stderr.write(`${e.level === 'info' ? '' : e.level + ': '}${e.message}\n`);
        break;
      case 'backend':
        process.stderr.write(`backend: ${e.backend}${e.precision === 'mixed' ? ', precision mixed' : ''}\n`);
        break;
      case 'stage-start':
        clear();
        process.stderr.write(`== ${e.stage}${e.run ? ` (${e.run})` : ''}\n`);
        break;
      case 'stage-end':
        clear();
        process.stderr.write(
          `== ${e.stage} ${e.status} in ${e.seconds.toFixed(1)} s${e.error ? `: ${e.error}` : ''}\n`,
        );
        break;
      case 'step': {
        const pct = ((100 * e.step) / e.steps).toFixed(0);
        const width = 24;
        const fill = Math.round((width * e.step) / e.steps);
        const bar = `[${'#'.repeat(fill)}${'.'.repeat(width - fill)}]`;
        const text =
          `${e.stage} epoch ${e.epoch}/${e.epochs} ${bar} ${pct}% loss ${e.loss.toFixed(4)} ` +
          `lr ${e.lr.toExponential(2)} ${e.tokensPerSecond.toFixed(0)} tok/s eta ${e.etaSeconds.toFixed(0)}s`;
        if (tty) {
          process.stderr.write(`\r${text}\x1b[K`);
          open = true;
        } else if (Date.now() - lastStep > 15000 || e.step === e.steps) {
          process.stderr.write(text + '\n');
          lastStep = Date.now();
        }
        break;
      }
      case 'epoch':
        clear();
        process.stderr.write(
          `${e.stage} epoch ${e.epoch}/${e.epochs}: ` +
            Object.entries(e.metrics)
              .map(([k, v]) => `${k} ${v.toFixed(4)}`)
              .join('  ') +
            '\n',
        );
        break;
      case 'table':
        clear();
        process.stdout.write(`\n${e.title}\n${table(e.columns, e.rows)}\n`);
        break;
      default:
        break;
    }
  };
}

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...args] = argv;
  if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    process.stdout.write(overview() + '\n');
    return cmd ? 0 : 2;
  }
  const json = args.includes('--json-events');
  const controller = new AbortController();
  // Ctrl-C, or SIGTERM (`timeout`, `kill`, a job scheduler): cancel after the current step, so that
  // run.json says 'cancelled' and the epoch checkpoint is there; the same signal again quits at once.
  let caught: NodeJS.Signals | null = null;
  const exitCode = () => (caught === 'SIGTERM' ? 143 : 130);
  const onSignal = (sig: NodeJS.Signals) => {
    if (caught) process.exit(exitCode());
    caught = sig;
    process.stderr.write(
      sig === 'SIGINT'
        ? '\ncancelling after the current step (Ctrl-C again to quit at once)...\n'
        : '\nterminated: cancelling after the current step (SIGTERM again to quit at once)...\n',
    );
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const { text } = await runCommand(cmd, args, { emit: printer(json), signal: controller.signal });
    if (text && !json) process.stdout.write(text + '\n');
    return 0;
  } catch (err) {
    const e = explainSystemError(err);
    if (isUserError(e)) {
      process.stderr.write(`error: ${(e as Error).message}\n`);
      return (e as Error).name === 'CancelledError' ? exitCode() : 2;
    }
    process.stderr.write(`internal error (please report): ${(e as Error)?.stack ?? e}\n`);
    return 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => process.exit(code));
}
