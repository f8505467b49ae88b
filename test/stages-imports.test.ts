// The layering rule: a stage (src/engine/stages/*) calls library functions, never another stage;
// the only modules of stages/ anything may import are its infrastructure: ./context (the
// stage bookkeeping), ./checks (path checks) and ./registry (the declarations); ./loaders is the
// one module that loads the stages. Library modules never import a stage (and, checked by
// `npm run lint`'s dependency-cruiser, nothing of stages/ at all).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { tsFiles } from './helpers/files';

const ENGINE = path.join(__dirname, '..', 'src', 'engine');
const STAGES = path.join(ENGINE, 'stages');

/** The infrastructure of stages/: not stages themselves. */
const INFRA = ['./context', './checks', './registry'];

/** Every module specifier of a file: [specifier, 'import' | 'export']. */
function specifiers(file: string): [string, 'import' | 'export'][] {
  const src = fs.readFileSync(file, 'utf8');
  const out: [string, 'import' | 'export'][] = [];
  const statements = /^\s*(import|export)\b[^;]*?\bfrom\s+'([^']+)'/gms;
  for (const m of src.matchAll(statements)) out.push([m[2], m[1] as 'import' | 'export']);
  for (const m of src.matchAll(/\b(?:import|require)\(\s*'([^']+)'\s*\)/g)) out.push([m[1], 'import']);
  return out;
}

describe('stage imports', () => {
  it('finds the imports it checks', () => {
    expect(specifiers(path.join(STAGES, 'pipeline.ts')).map(([s]) => s)).toContain('./context');
  });

  it('no stage imports another stage (the loaders load them; ./context, ./checks, ./registry aside)', () => {
    const bad: string[] = [];
    for (const f of fs.readdirSync(STAGES).filter((n) => n.endsWith('.ts') && n !== 'loaders.ts')) {
      for (const [spec, kind] of specifiers(path.join(STAGES, f))) {
        const target = path.resolve(STAGES, spec);
        const isStage = spec.startsWith('.') && path.dirname(target) === STAGES;
        if (!isStage || INFRA.includes(spec)) continue;
        bad.push(`stages/${f}: ${kind} from '${spec}'`);
      }
    }
    expect(bad).toEqual([]);
  });

  it('no library module imports a stage (stages/context, checks and registry aside)', () => {
    const bad: string[] = [];
    for (const file of tsFiles(ENGINE)) {
      const rel = path.relative(ENGINE, file);
      if (rel.startsWith('stages' + path.sep) || rel === 'commands.ts') continue;
      for (const [spec] of specifiers(file)) {
        if (!spec.startsWith('.')) continue;
        const target = path.resolve(path.dirname(file), spec);
        const infra = INFRA.map((i) => i.slice(2));
        if (path.dirname(target) === STAGES && !infra.includes(path.basename(target))) bad.push(`${rel}: '${spec}'`);
      }
    }
    expect(bad).toEqual([]);
  });
});
