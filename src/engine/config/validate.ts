// Validation of user config files against the JSON schemas of the settings table
// (config/schemas.ts). schemas/*.json are the same schemas written out (a test keeps them in step);
// they drive VS Code's editor validation and hovers (package.json jsonValidation), so what the
// editor underlines and what the engine rejects are the same thing. Ajv's raw errors are rewritten
// into one line per problem: `FILE: /transformer/n_iters: must be integer >= 1, got 0`.

import Ajv from 'ajv';
import type { ErrorObject, ValidateFunction } from 'ajv';
import { clipValue, UserError } from '../errors';
import { readJson } from '../io/atomic';
import { pruneSchema, settingsSchema } from './schemas';

export type ConfigKind = 'prune' | 'settings';

/** The raw schemas, for the extension (and anything else that wants to show or reuse them). */
export const SCHEMAS: Readonly<Record<ConfigKind, Record<string, unknown>>> = {
  prune: pruneSchema(),
  settings: settingsSchema(),
};

type JsonSchema = Record<string, unknown>;

// One Ajv instance with both schemas, compiled on first use. strict mode makes Ajv reject schema
// mistakes (unknown keywords, ...) instead of silently ignoring them, except strictRequired: it
// rejects the standard "anyOf: [{required: [a]}, {required: [b]}]" (at least one of a, b) and the
// if/then "required" idioms, whose keys are declared one level up.
let validators: Record<ConfigKind, ValidateFunction> | undefined;

function getValidators(): Record<ConfigKind, ValidateFunction> {
  if (!validators) {
    const ajv = new Ajv({ allErrors: true, strict: true, strictRequired: false, verbose: true });
    ajv.addSchema(SCHEMAS.prune).addSchema(SCHEMAS.settings);
    validators = {
      prune: ajv.getSchema(SCHEMAS.prune.$id as string)!,
      settings: ajv.getSchema(SCHEMAS.settings.$id as string)!,
    };
  }
  return validators;
}

/** Validate `value` (parsed from `file`); every problem becomes one line of a single UserError. */
export function validateConfig(kind: ConfigKind, value: unknown, file: string): void {
  const validate = getValidators()[kind];
  if (validate(value)) return;
  const lines = describeErrors(validate.errors ?? []);
  throw new UserError(lines.map((l) => `${file}: ${l}`).join('\n'));
}

/** readJson + validateConfig. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function loadConfigFile(kind: ConfigKind, file: string): any {
  const value = readJson(file);
  validateConfig(kind, value, file);
  return value;
}

// ---------------------------------------------------------------------------------------------
// Turning Ajv errors into sentences.

function where(instancePath: string): string {
  return instancePath === '' ? '(top level)' : instancePath;
}

function show(v: unknown): string {
  return v === undefined ? 'nothing' : clipValue(JSON.stringify(v));
}

/** "integer >= 1", "number > 0 and < 1", "boolean": what a schema with type and bounds wants. */
function expected(s: JsonSchema): string {
  const parts: string[] = [];
  if (Array.isArray(s.enum)) return `one of ${s.enum.map(show).join(', ')}`;
  const type = Array.isArray(s.type) ? s.type.join(' or ') : String(s.type ?? 'value');
  const bounds: string[] = [];
  if (typeof s.minimum === 'number') bounds.push(`>= ${s.minimum}`);
  if (typeof s.exclusiveMinimum === 'number') bounds.push(`> ${s.exclusiveMinimum}`);
  if (typeof s.maximum === 'number') bounds.push(`<= ${s.maximum}`);
  if (typeof s.exclusiveMaximum === 'number') bounds.push(`< ${s.exclusiveMaximum}`);
  parts.push(type);
  if (bounds.length) parts.push(bounds.join(' and '));
  return parts.join(' ');
}

/** Edit distance, for "did you mean" on misspelt keys. */
function levenshtein(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length]!;
}

function unknownKey(key: string, parent: JsonSchema): string {
  const known = Object.keys((parent.properties as JsonSchema | undefined) ?? {}).filter((k) => k !== '$schema');
  const best = known
    .map((k) => ({ k, d: levenshtein(key.toLowerCase(), k.toLowerCase()) }))
    .sort((x, y) => x.d - y.d)[0];
  const hint =
    best && best.d <= Math.max(2, Math.floor(key.length / 4))
      ? `did you mean '${best.k}'?`
      : `allowed: ${known.join(', ')}`;
  return `unknown key '${key}' (${hint})`;
}

/** For a `required` coming from an if/then: "when pruning_method is "masks"". */
function condition(parent: JsonSchema | undefined): string {
  const props = ((parent?.if as JsonSchema | undefined)?.properties ?? {}) as Record<string, JsonSchema>;
  const conds = Object.entries(props)
    .filter(([, s]) => 'const' in s)
    .map(([k, s]) => `${k} is ${show(s.const)}`);
  return conds.length ? ` (required when ${conds.join(' and ')})` : '';
}

function describeErrors(errors: ErrorObject[]): string[] {
  const lines: string[] = [];
  // anyOf of plain `required`s ("at least one of these keys") gets one line instead of one per branch.
  const absorbed: string[] = [];
  for (const e of errors) {
    const branches = e.keyword === 'anyOf' ? (e.schema as JsonSchema[]) : undefined;
    if (branches && branches.every((b) => Object.keys(b).length === 1 && Array.isArray(b.required))) {
      absorbed.push(e.schemaPath + '/');
    }
  }

  for (const e of errors) {
    if (absorbed.some((p) => e.schemaPath.startsWith(p))) continue;
    const at = where(e.instancePath);
    const parent = e.parentSchema as JsonSchema | undefined;
    switch (e.keyword) {
      case 'if':
        continue; // the failing `then` reports the actual problem
      case 'type':
      case 'minimum':
      case 'maximum':
      case 'exclusiveMinimum':
      case 'exclusiveMaximum':
        lines.push(`${at}: must be ${expected(parent ?? {})}, got ${show(e.data)}`);
        break;
      case 'enum':
        lines.push(`${at}: must be one of ${(e.schema as unknown[]).map(show).join(', ')}, got ${show(e.data)}`);
        break;
      case 'additionalProperties':
        lines.push(
          `${at}: ${unknownKey((e.params as { additionalProperty: string }).additionalProperty, parent ?? {})}`,
        );
        break;
      case 'required': {
        const key = (e.params as { missingProperty: string }).missingProperty;
        // For a `then` branch, the schema holding the `if` is one level up from the `then`.
        const holder = /\/then\/required$/.test(e.schemaPath) ? findIfHolder(e) : undefined;
        lines.push(`${at}: missing required key '${key}'${condition(holder)}`);
        break;
      }
      case 'anyOf': {
        const branches = e.schema as JsonSchema[];
        if (branches.every((b) => Object.keys(b).length === 1 && Array.isArray(b.required))) {
          const keys = branches.flatMap((b) => b.required as string[]).map((k) => `'${k}'`);
          lines.push(`${at}: must have at least one of ${keys.join(', ')}`);
        } else {
          lines.push(`${at}: ${e.message ?? 'is invalid'}`);
        }
        break;
      }
      default:
        lines.push(`${at}: ${e.message ?? 'is invalid'}`);
    }
  }
  return [...new Set(lines)];
}

/** The schema object that holds the `if`/`then` an error's schemaPath goes through. */
function findIfHolder(e: ErrorObject): JsonSchema | undefined {
  // schemaPath is like "urn#/definitions/transformer/then/required" or "#/definitions/transformer/then/required".
  const hash = e.schemaPath.indexOf('#');
  const pointer = e.schemaPath.slice(hash + 1).replace(/\/then\/required$/, '');
  for (const root of Object.values(SCHEMAS)) {
    const found = resolvePointer(root, pointer);
    if (found && typeof found === 'object' && 'if' in found) return found as JsonSchema;
  }
  return undefined;
}

function resolvePointer(root: unknown, pointer: string): unknown {
  let node = root;
  for (const raw of pointer.split('/').slice(1)) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (typeof node !== 'object' || node === null) return undefined;
    node = (node as Record<string, unknown>)[key];
  }
  return node;
}
