// The stage registry is the one declaration of every command: each entry must reach the CLI (its
// parser, usage and --help), the forked engine process (the protocol's stage names), and the
// extension (a package.json command with the registry's title and icon, context menus where the
// registry places it, and an implementation that loads). A stage added to the registry without
// the rest fails here; so does a package.json command that no registry entry or extension code has.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { overview, parse, runCommand } from '../src/engine/commands';
import { isStageName as engineAccepts } from '../src/extension/engineClient';
import {
  COMMON_OPTIONS,
  isStageName,
  REGISTRY,
  STAGE_NAMES,
  stageDef,
  usageLine,
  type OptionDef,
} from '../src/engine/stages/registry';
import { presetNames } from '../src/engine/config/presets';
import { loadStage } from '../src/engine/stages/loaders';
import { stageContextValue } from '../src/extension/runModel';
import { paletteTitle } from '../src/extension/workflow';

const ROOT = path.join(__dirname, '..');
const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
const commands = pkg.contributes.commands as { command: string; title: string; icon?: string; category: string }[];
const menus = pkg.contributes.menus['view/item/context'] as { command: string; when: string }[];
const matches = (when: string, value: string) =>
  [...when.matchAll(/viewItem =~ \/(.*?)\/(?=\s|\)|$)/g)].some((m) => new RegExp(m[1]).test(value)) ||
  [...when.matchAll(/viewItem == (\w+)/g)].some((m) => m[1] === value);

describe('stage registry', () => {
  it("--preset's help names every preset", () => {
    expect(COMMON_OPTIONS.preset.help).toContain(`(${presetNames().join(', ')})`);
  });

  it('has a stage for every name the protocol knows, and only those', () => {
    expect(STAGE_NAMES.length).toBeGreaterThanOrEqual(12);
    for (const s of STAGE_NAMES) {
      expect(isStageName(s)).toBe(true);
      expect(engineAccepts(s), `${s}: the engine client accepts it`).toBe(true);
    }
    expect(isStageName('toString')).toBe(false);
    expect(engineAccepts('nope')).toBe(false);
  });

  it('every entry reaches the CLI: usage, --help and its declared options', async () => {
    const text = overview();
    for (const s of STAGE_NAMES) {
      expect(text, s).toContain(`  ${s} `);
      expect(text).toContain(usageLine(s));
      const help = await runCommand(s, ['--help'], { emit: () => {} });
      expect(help.text, s).toContain(`bert-pruner ${s}: ${REGISTRY[s].summary}`);
      // Each declared option parses; an undeclared one is refused.
      for (const [flag, o] of Object.entries(REGISTRY[s].options as Record<string, OptionDef>)) {
        const v = o.type === 'boolean' ? [] : o.type === 'strings' ? ['a', 'b'] : o.type === 'string' ? ['x'] : ['3'];
        const parsed = parse(s, [`--${flag}`, ...v]) as Record<string, unknown>;
        expect(parsed[flag], `${s} --${flag}`).toEqual(
          o.type === 'boolean' ? true : o.type === 'strings' ? ['a', 'b'] : o.type === 'string' ? 'x' : 3,
        );
      }
      expect(() => parse(s, ['--not-an-option', 'x'])).toThrow(/Unknown option '--not-an-option'/);
    }
  });

  it("every entry is in docs/commands.md's command table, with its required options", () => {
    const table = fs.readFileSync(path.join(ROOT, 'docs', 'commands.md'), 'utf8');
    for (const s of STAGE_NAMES) {
      const row = table.split('\n').find((l) => l.startsWith(`| \`${s} `) || l.startsWith(`| \`${s}\``));
      expect(row, `docs/commands.md lacks a row for ${s}`).toBeDefined();
      for (const [flag, o] of Object.entries(REGISTRY[s].options as Record<string, OptionDef>)) {
        if (o.required) expect(row, `${s} --${flag}`).toContain(`--${flag}`);
      }
    }
  });

  it('every entry has an implementation that loads', async () => {
    for (const s of STAGE_NAMES) {
      const m = await loadStage(s);
      expect(typeof m.run, s).toBe('function');
      // a pipeline stage's module gives the step the pipeline runs
      if (stageDef(s).pipeline) expect(typeof m.step, s).toBe('function');
    }
  });

  it('every entry reaches the extension: a package.json command with its title and icon', () => {
    for (const s of STAGE_NAMES) {
      const d = REGISTRY[s];
      const c = commands.find((x) => x.command === `bertPruner.${d.command}`);
      expect(c, `package.json lacks bertPruner.${d.command} (stage ${s})`).toBeDefined();
      expect(c!.title, s).toBe(paletteTitle(s)); // the registry's title, numbered for the palette's order
      expect(c!.icon, s).toBe(`$(${d.icon})`);
      expect(c!.category).toBe('BERT Pruner');
    }
  });

  it('the tree offers each stage where the registry places it', () => {
    const base = { metrics: {}, status: 'done' as const };
    const contexts = {
      run: ['run'],
      checkpoint: ['checkpoint', stageContextValue({ ...base, key: 'finetune', checkpoint: '/c' })],
      prunedCheckpoint: [stageContextValue({ ...base, key: 'prune', checkpoint: '/p', report: '/p/r.json' })],
    };
    for (const s of STAGE_NAMES) {
      const d = REGISTRY[s];
      const whens = menus.filter((m) => m.command === `bertPruner.${d.command}`).map((m) => m.when);
      for (const place of d.tree) {
        if (place === 'none') {
          expect(whens, `${s} has no tree menu`).toEqual([]);
          continue;
        }
        for (const value of contexts[place])
          expect(
            whens.some((w) => matches(w, value)),
            `${s} on a ${place} (${value})`,
          ).toBe(true);
      }
    }
  });

  it('the pipeline steps and the resumable and training flags are stages of the registry', () => {
    for (const s of STAGE_NAMES) for (const step of stageDef(s).steps ?? []) expect(isStageName(step), step).toBe(true);
    expect(STAGE_NAMES.filter((s) => REGISTRY[s].resumable).sort()).toEqual([
      'finetune',
      'pipeline',
      'pretrain',
      'refinetune',
    ]);
    for (const s of STAGE_NAMES.filter((x) => REGISTRY[x].trains)) expect(REGISTRY[s].backend, s).toBe(true);
  });
});
