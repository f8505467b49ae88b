// The shape of run settings, derived from the settings table (config/fields.ts): a field with a
// default or no `optional` flag is always present after resolveSettings; an optional one may be
// absent. Descriptions are the table's. config/settings.ts resolves settings, config/presets.ts
// names whole sets of them; both import these types and neither imports the other.
import type { SECTIONS, SectionName } from './fields';

type ValueOf<F> = F extends { enum: readonly (infer E)[] }
  ? E
  : F extends { type: 'integer' | 'number' }
    ? number
    : F extends { type: 'boolean' }
      ? boolean
      : F extends { type: 'string' }
        ? string
        : never;
type Flat<T> = { -readonly [K in keyof T]: T[K] };
type FieldsOf<N extends SectionName> = (typeof SECTIONS)[N]['fields'];
/** A section's values: required fields, then the optional ones. */
export type SectionValues<N extends SectionName> = Flat<
  {
    [K in keyof FieldsOf<N> as FieldsOf<N>[K] extends { optional: true } ? never : K]: ValueOf<FieldsOf<N>[K]>;
  } & {
    [K in keyof FieldsOf<N> as FieldsOf<N>[K] extends { optional: true } ? K : never]?: ValueOf<FieldsOf<N>[K]>;
  }
>;

export type ModelSettings = SectionValues<'model'>;
export type PretrainSettings = SectionValues<'pretrain'>;
export type FinetuneSettings = SectionValues<'finetune'>;
export type RefinetuneSettings = SectionValues<'refinetune'>;
/** What every training stage has. */
export type OptimSettings = Pick<PretrainSettings, keyof PretrainSettings & keyof RefinetuneSettings>;
export type LrSchedule = OptimSettings['schedule'];
export type ProblemTypeSetting = NonNullable<FinetuneSettings['problem_type']>;
export type TransformerPruneConfig = SectionValues<'transformer'>;
export type VocabularyPruneConfig = SectionValues<'vocabulary'>;

export interface PruneConfig {
  transformer?: TransformerPruneConfig;
  vocabulary?: VocabularyPruneConfig;
}

export interface Settings {
  seed: number;
  model: ModelSettings;
  pretrain: PretrainSettings;
  finetune: FinetuneSettings;
  prune: PruneConfig;
  refinetune: RefinetuneSettings;
}

/** Recursively optional: the shape of an override file (and of a standalone prune config). */
export type DeepPartial<T> = T extends object ? { [K in keyof T]?: DeepPartial<T[K]> } : T;
export type SettingsOverride = DeepPartial<Settings> & { $schema?: string };
