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
