// SPDX-License-Identifier: Apache-2.0
import test from 'ava';
import { parseDuration, parseSize } from '../../src/units.js';

test('sizes: binary units, like Docker', (t) => {
  t.is(parseSize(1234), 1234);
  t.is(parseSize('64MiB'), 64 * 2 ** 20);
  t.is(parseSize('64m'), 64 * 2 ** 20);
  t.is(parseSize('64MB'), 64 * 2 ** 20);
  t.is(parseSize('1.5k'), 1536);
  t.is(parseSize('2G'), 2 * 2 ** 30);
  t.is(parseSize('10'), 10);
  for (const bad of ['', 'abc', '-1', '1x', '1 2', '1e3']) t.is(parseSize(bad), undefined, bad);
  t.is(parseSize(-1), undefined);
  t.is(parseSize(1.5), undefined);
  t.is(parseSize(Number.MAX_SAFE_INTEGER + 2), undefined);
});

test('durations: milliseconds or ms-style strings', (t) => {
  t.is(parseDuration(250), 250);
  t.is(parseDuration('2s'), 2000);
  t.is(parseDuration('1.5m'), 90_000);
  t.is(parseDuration('500ms'), 500);
  t.is(parseDuration(Infinity), 0);
  for (const bad of ['', 'soon', '-1s']) t.is(parseDuration(bad), undefined, bad);
  t.is(parseDuration(-1), undefined);
  t.is(parseDuration(Number.NaN), undefined);
});
