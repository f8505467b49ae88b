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

/** Await fn, expect it to reject with a UserError, return its message. */
export async function userErrorAsync(fn: () => Promise<unknown>): Promise<string> {
  try {
    await fn();
  } catch (e) {
    expect(e).toBeInstanceOf(UserError);
    return (e as Error).message;
  }
  throw new Error('expected a UserError');
}
