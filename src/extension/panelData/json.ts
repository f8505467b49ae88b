// Checks of values read from files and messages that nothing guarantees (shared by the panels' data).
export const isObject = (x: unknown): x is Record<string, unknown> =>
  typeof x === 'object' && x !== null && !Array.isArray(x);
export const num = (x: unknown) => (typeof x === 'number' && Number.isFinite(x) ? x : undefined);
export const nums = (x: unknown) =>
  Array.isArray(x) ? x.filter((v): v is number => typeof v === 'number' && Number.isFinite(v)) : [];

/** The finite numbers of an object, by key. */
export function finite(x: unknown): Record<string, number> {
  const out: Record<string, number> = {};
  if (typeof x === 'object' && x !== null)
    for (const [k, v] of Object.entries(x)) if (typeof v === 'number' && Number.isFinite(v)) out[k] = v;
  return out;
}
