// SPDX-License-Identifier: Apache-2.0
// ow at the public edge: one ERR_INVALID_OPTION per bad argument, naming it and what it belongs to.
import ow, { ArgumentError, type BasePredicate } from 'ow';
import { SandboxError } from './errors.js';

/** @internal Checks `value` with `predicate`; a failure is ERR_INVALID_OPTION "Invalid <what>: <ow's message>". */
export function checkArgument<T>(what: string, value: unknown, label: string, predicate: BasePredicate<T>): asserts value is T {
  try {
    ow(value, label, predicate);
  } catch (error) {
    if (error instanceof ArgumentError) throw new SandboxError('ERR_INVALID_OPTION', `Invalid ${what}: ${error.message}`, { cause: error });
    throw error;
  }
}
