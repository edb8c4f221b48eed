// SPDX-License-Identifier: Apache-2.0
// ow at the network API's edge: one ERR_INVALID_OPTION per bad argument, naming it.
import ow, { type BasePredicate } from 'ow';
import { parseCidr } from './ipv4.js';
import { checkArgument } from '../check.js';

/** @internal */
export function check<T>(value: unknown, label: string, predicate: BasePredicate<T>): void {
  checkArgument('network option', value, label, predicate);
}

/** @internal Network names: they name files and show in `nsbox network ls`. */
export const networkNamePattern = /^[a-z0-9][a-z0-9_.-]{0,62}$/;

/** @internal */
export const networkName = ow.string.matches(networkNamePattern);

/** @internal An IPv4 CIDR (or address); `strict` refuses host bits (a subnet). */
export function cidrString(strict: boolean) {
  return ow.string.validate((s) => ({
    validator: parseCidr(s, strict) !== undefined,
    message: (label: string) =>
      strict ? `Expected ${label} to be an IPv4 subnet such as 10.231.5.0/24 (no host bits set), got \`${s}\`` : `Expected ${label} to be an IPv4 address or CIDR such as 203.0.113.0/24, got \`${s}\``,
  }));
}
