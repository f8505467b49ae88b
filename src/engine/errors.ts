// Errors caused by the user's input or environment. The CLI and the extension print their message
// (which names the file, line or JSON path and what is wrong) and never a stack trace.
export class UserError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UserError';
  }
}

/** A stage stopped because the user asked it to (Ctrl-C, the extension's Cancel). */
export class CancelledError extends Error {
  constructor(message = 'cancelled') {
    super(message);
    this.name = 'CancelledError';
  }
}

export function isUserError(e: unknown): e is UserError {
  return e instanceof Error && (e.name === 'UserError' || e.name === 'CancelledError');
}

// What an OS error about a path means to the user, by errno code. Only codes caused by the user's
// paths, disk or permissions: anything else (EBADF, EINVAL, ...) would be our bug and keeps its stack.
const FS_REASONS: Readonly<Record<string, string>> = {
  ENOSPC: 'disk full',
  EDQUOT: 'disk quota exceeded',
  EFBIG: 'file too large (file system limit, or the ulimit -f of this shell)',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  ENOTDIR: 'a part of the path is a file, not a directory',
  EISDIR: 'is a directory',
  ENOENT: 'no such file or directory',
  ENAMETOOLONG: 'file name too long',
  ELOOP: 'too many levels of symbolic links',
};

/**
 * Turn a Node file-system error (it has code, syscall and path) that the user can act on into a
 * UserError `PATH: cannot SYSCALL: REASON`; every other value is returned as it is. The CLI, the
 * engine process and recordStage pass errors through this, so a full disk or a run folder under a
 * file is one clear line and not an 'internal error' with a stack trace.
 */
export function explainSystemError(e: unknown): unknown {
  const err = e as NodeJS.ErrnoException;
  if (!(e instanceof Error) || isUserError(e) || !err.code || !err.syscall || !(err.code in FS_REASONS)) return e;
  const where = err.path ? `${err.path}: ` : '';
  const dest = (err as { dest?: string }).dest ? ` (to ${(err as { dest?: string }).dest})` : '';
  return new UserError(`${where}cannot ${err.syscall}${dest}: ${FS_REASONS[err.code]}`);
}

/**
 * A value from a user's file, as an error message quotes it: shortened, so that a huge value (a
 * config with millions of entries) still gives one readable line.
 */
export function clipValue(text: string): string {
  return text.length > 80 ? `${text.slice(0, 80)}... (${text.length} characters)` : text;
}
