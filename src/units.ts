// SPDX-License-Identifier: Apache-2.0
// Human sizes ('64MiB', '1g') and durations ('2s', '1.5m') as numbers.
import ms from 'ms';

const SIZE = /^(\d+(?:\.\d+)?)\s*(b|k|kb|kib|m|mb|mib|g|gb|gib|t|tb|tib)?$/i;
const POWER: Record<string, number> = { '': 0, b: 0, k: 1, m: 2, g: 3, t: 4 };

/**
 * Bytes from a number or a size string. Like Docker, every unit is binary: '64m', '64MB'
 * and '64MiB' all mean 64 × 2^20. Returns undefined when the string is not a size.
 */
export function parseSize(value: number | string): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value >= 0 ? value : undefined;
  const match = SIZE.exec(value.trim());
  if (!match) return undefined;
  const bytes = Number(match[1]) * 1024 ** POWER[(match[2] ?? '').charAt(0).toLowerCase()]!;
  return Number.isSafeInteger(Math.round(bytes)) ? Math.round(bytes) : undefined;
}

/** Milliseconds from a number or a duration string ('500ms', '2s', '1m'). Undefined when invalid. */
export function parseDuration(value: number | string): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? value : value === Infinity ? 0 : undefined;
  if (value.trim() === '') return undefined;
  const parsed = ms(value.trim() as ms.StringValue) as number | undefined;
  return typeof parsed === 'number' && Number.isFinite(parsed) && parsed >= 0 ? parsed : undefined;
}
