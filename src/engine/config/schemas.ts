// The two JSON Schemas, built from the settings table (config/fields.ts): the settings override
// file (*.bert-pruner.json, --config) and the pruning config (*.prune.json). The engine validates
// with these; schemas/*.json are the same schemas written out for the editor (package.json
// jsonValidation), which `npm run schemas` rewrites and test/config-fields.test.ts keeps in step.
import { SECTIONS, type FieldDef, type SectionName } from './fields';

type JsonSchema = Record<string, unknown>;

const SCHEMA_DRAFT = 'http://json-schema.org/draft-07/schema#';
const ID_BASE = 'https://bert-pruner.invalid/schemas/';
const SCHEMA_KEY = {
  type: 'string',
  description: 'The JSON Schema this file follows (lets editors validate it).',
};

/** A field as a schema property: the table's entry without what only the engine reads. */
function property(f: FieldDef): JsonSchema {
  const { optional: _optional, hf: _hf, ...p } = f;
  return { ...p };
}

function properties(name: SectionName): JsonSchema {
  const fields = SECTIONS[name].fields as Record<string, FieldDef>;
  return Object.fromEntries(Object.entries(fields).map(([k, f]) => [k, property(f)]));
}

/** A settings section: an object of its fields, nothing else. */
function section(name: SectionName): JsonSchema {
  return {
    type: 'object',
    additionalProperties: false,
    description: SECTIONS[name].description,
    properties: properties(name),
  };
}

/** The pruning parts, shared by both schemas. */
function pruneDefinitions(): JsonSchema {
  return {
    transformer: {
      ...section('transformer'),
      // pruning_method 'masks' needs the masks file
      if: { properties: { pruning_method: { const: 'masks' } }, required: ['pruning_method'] },
      then: { required: ['masks_file'] },
    },
    vocabulary: section('vocabulary'),
    prune: {
      type: 'object',
      description: 'What to prune after fine-tuning: transformer (heads and FFN neurons) and/or vocabulary.',
      additionalProperties: false,
      properties: {
        transformer: { $ref: '#/definitions/transformer' },
        vocabulary: { $ref: '#/definitions/vocabulary' },
      },
    },
  };
}

export function settingsSchema(): JsonSchema {
  return {
    $schema: SCHEMA_DRAFT,
    $id: `${ID_BASE}settings.schema.json`,
    title: 'bert-pruner run settings',
    description:
      "Overrides of a preset's settings (bert-pruner --config FILE, or any *.bert-pruner.json file). " +
      'Every key is optional: objects merge into the preset, values replace it. ' +
      "Defaults shown are the 'quick' preset's.",
    type: 'object',
    additionalProperties: false,
    properties: {
      $schema: SCHEMA_KEY,
      ...properties('seed'),
      model: section('model'),
      pretrain: section('pretrain'),
      finetune: section('finetune'),
      prune: { $ref: '#/definitions/prune' },
      refinetune: section('refinetune'),
    },
    definitions: pruneDefinitions(),
  };
}

export function pruneSchema(): JsonSchema {
  return {
    $schema: SCHEMA_DRAFT,
    $id: `${ID_BASE}prune.schema.json`,
    title: 'bert-pruner pruning config',
    description:
      'How to prune a fine-tuned BERT: transformer (attention heads and FFN neurons) and/or vocabulary. ' +
      'At least one of the two is required.',
    type: 'object',
    additionalProperties: false,
    properties: {
      $schema: SCHEMA_KEY,
      transformer: { $ref: '#/definitions/transformer' },
      vocabulary: { $ref: '#/definitions/vocabulary' },
    },
    anyOf: [{ required: ['transformer'] }, { required: ['vocabulary'] }],
    definitions: pruneDefinitions(),
  };
}
