// Merging a settings override into a base (presets, run.json, --config files).

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Merge `override` into `base` without modifying either: objects merge key by key, everything else
 * (arrays, scalars, null) replaces; undefined keeps the base value. The result shares nothing
 * mutable with the inputs.
 */
export function deepMerge<T>(base: T, override: unknown): T {
  if (override === undefined) return structuredClone(base);
  if (!isPlainObject(base) || !isPlainObject(override)) return structuredClone(override) as T;
  const out: Record<string, unknown> = structuredClone(base);
  for (const [k, v] of Object.entries(override)) {
    if (v === undefined) continue;
    const merged = Object.hasOwn(out, k) ? deepMerge(out[k], v) : structuredClone(v);
    // defineProperty, not assignment: a key named "__proto__" must stay a plain key.
    Object.defineProperty(out, k, { value: merged, enumerable: true, writable: true, configurable: true });
  }
  return out as T;
}
