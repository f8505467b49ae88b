// The layering rule: a stage (src/engine/stages/*) calls library functions, never another stage;
// the only stage module anything may import is ./context (the StageContext and its helpers), and
// library modules never import a stage. Only commands.ts (the dispatcher) imports the stages.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

const ENGINE = path.join(__dirname, '..', 'src', 'engine');
const STAGES = path.join(ENGINE, 'stages');

/** Re-exports of another stage kept for callers' compatibility: file -> the stage modules it re-exports. */
const COMPAT_REEXPORTS: Record<string, string[]> = { 'prune.ts': ['./prune-sweep'] };

/** Every module specifier of a file: [specifier, 'import' | 'export']. */
function specifiers(file: string): [string, 'import' | 'export'][] {
  const src = fs.readFileSync(file, 'utf8');
  const out: [string, 'import' | 'export'][] = [];
  const statements = /^\s*(import|export)\b[^;]*?\bfrom\s+'([^']+)'/gms;
  for (const m of src.matchAll(statements)) out.push([m[2], m[1] as 'import' | 'export']);
  for (const m of src.matchAll(/\b(?:import|require)\(\s*'([^']+)'\s*\)/g)) out.push([m[1], 'import']);
  return out;
}

function tsFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? tsFiles(p) : e.name.endsWith('.ts') ? [p] : [];
  });
}

describe('stage imports', () => {
  it('finds the imports it checks', () => {
    expect(specifiers(path.join(STAGES, 'pipeline.ts')).map(([s]) => s)).toContain('./context');
  });

  it('no stage imports another stage (./context aside; listed compatibility re-exports aside)', () => {
    const bad: string[] = [];
    for (const f of fs.readdirSync(STAGES).filter((n) => n.endsWith('.ts'))) {
      for (const [spec, kind] of specifiers(path.join(STAGES, f))) {
        const target = path.resolve(STAGES, spec);
        const isStage = spec.startsWith('.') && path.dirname(target) === STAGES;
        if (!isStage || spec === './context') continue;
        if (kind === 'export' && COMPAT_REEXPORTS[f]?.includes(spec)) continue;
        bad.push(`stages/${f}: ${kind} from '${spec}'`);
      }
    }
    expect(bad).toEqual([]);
  });

  it('no library module imports a stage other than stages/context', () => {
    const bad: string[] = [];
    for (const file of tsFiles(ENGINE)) {
      const rel = path.relative(ENGINE, file);
      if (rel.startsWith('stages' + path.sep) || rel === 'commands.ts') continue;
      for (const [spec] of specifiers(file)) {
        if (!spec.startsWith('.')) continue;
        const target = path.resolve(path.dirname(file), spec);
        if (path.dirname(target) === STAGES && path.basename(target) !== 'context') bad.push(`${rel}: '${spec}'`);
      }
    }
    expect(bad).toEqual([]);
  });
});
