// What loading a weights file may allocate, checked before anything is read or inflated
// (io/safetensors.ts, io/torch-bin.ts; sized from the config by io/checkpoint.ts).
import { UserError } from '../errors';

/**
 * What a weights file may make us allocate: float32 elements of all its tensors, and bytes of the
 * storages it inflates (or reads). loadCheckpoint sizes it from the config (weightBudget); every
 * reader spends from it before allocating. `what` says where the budget came from.
 */
export interface WeightBudget {
  elements: number;
  bytes: number;
  what: string;
}

/** The most float32 elements any weights file may hold, whatever its config says (4 GiB of arrays). */
export const MAX_WEIGHT_ELEMENTS = 2 ** 30;

export function defaultBudget(): WeightBudget {
  return { elements: MAX_WEIGHT_ELEMENTS, bytes: 4 * MAX_WEIGHT_ELEMENTS, what: `the ${MAX_WEIGHT_ELEMENTS} maximum` };
}

/** Take `elements` float32s and `bytes` of storage from the budget, or refuse before allocating. */
export function spendBudget(b: WeightBudget, elements: number, bytes: number, file: string): void {
  if (elements > b.elements || bytes > b.bytes)
    throw new UserError(
      `${file}: its tensors would take ${elements} float32 values (${bytes} bytes of storage), more than ` +
        `${b.what} allows (${b.elements} values); refused before reading them`,
    );
  b.elements -= elements;
  b.bytes -= bytes;
}
