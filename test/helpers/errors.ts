import { expect } from 'vitest';
import { UserError } from '../../src/engine/errors';

/** Run fn, expect a UserError, return its message. */
export function userError(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(UserError);
    return (e as Error).message;
  }
  throw new Error('expected a UserError');
}
