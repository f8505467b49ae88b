// Checks of a command's paths that several stages make before any work starts.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserError } from '../errors';

/** Refuse an output that is one of the command's inputs: writing it would destroy the input. */
export function notInput(out: string, input: string, outFlag: string, inFlag: string): string {
  if (path.resolve(out) === path.resolve(input)) {
    throw new UserError(`${outFlag} ${out}: is the same as ${inFlag}; writing it would overwrite the input (choose another ${outFlag})`);
  }
  return out;
}

export function existing(p: string, what: string): string {
  if (!fs.existsSync(p)) throw new UserError(`${p}: no such ${what}`);
  return p;
}
