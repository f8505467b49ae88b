// Checks of a command's paths that several stages make before any work starts.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserError } from '../errors';
import { checkFileReplaceable, checkReplaceable, type OwnedFileKind } from '../io/ownership';
import { runPaths } from '../io/paths';

/** Refuse an output that is one of the command's inputs: writing it would destroy the input. */
export function notInput(out: string, input: string, outFlag: string, inFlag: string): string {
  if (path.resolve(out) === path.resolve(input)) {
    throw new UserError(
      `${outFlag} ${out}: is the same as ${inFlag}; writing it would overwrite the input (choose another ${outFlag})`,
    );
  }
  return out;
}

export function existing(p: string, what: string): string {
  if (!fs.existsSync(p)) throw new UserError(`${p}: no such ${what}`);
  return p;
}

/** Checkpoint folders a stage will replace: each must be missing, empty or ours (or --force). */
export function replaceable(dirs: string[], force: boolean | undefined, flag?: string): void {
  for (const d of dirs) checkReplaceable(d, 'checkpoint', { force, flag });
}

/** A file a stage will write (--out): missing, empty or one of ours of `kind` (or --force). */
export function writableFile(file: string, kind: OwnedFileKind, force: boolean | undefined, flag = '--out'): string {
  checkFileReplaceable(file, kind, { force, flag });
  return file;
}

/** corpus-vocab rewrites RUN/data: a --data that is that folder would be rewritten from itself. */
export function notRunData(data: string, run: string): void {
  const own = path.dirname(runPaths(run).train);
  const real = (p: string) => {
    try {
      return fs.realpathSync(p);
    } catch {
      return path.resolve(p);
    }
  };
  if (real(data) === real(own)) {
    const why = 'which this command rewrites (give the original data folder)';
    throw new UserError(`--data ${data}: is the run's own copy of its data, ${why}`);
  }
}
