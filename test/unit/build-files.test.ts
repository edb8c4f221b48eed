// SPDX-License-Identifier: Apache-2.0
// cmake-js is the source of truth for the addon's sources; binding.gyp must list the same.
import test from 'ava';
import { readFileSync, readdirSync } from 'node:fs';

const root = new URL('../../', import.meta.url);

test('CMakeLists.txt and binding.gyp build the same sources, and every .cc is built', (t) => {
  const cmake = readFileSync(new URL('addon/CMakeLists.txt', root), 'utf8');
  const fromCmake = [...cmake.matchAll(/^\s+(src\/\w+\.cc)$/gm)].map((m) => `addon/${m[1]}`).sort();
  const gyp = readFileSync(new URL('binding.gyp', root), 'utf8');
  const fromGyp = [...gyp.matchAll(/"(addon\/src\/\w+\.cc)"/g)].map((m) => m[1]).sort();
  t.deepEqual(fromGyp, fromCmake);
  const onDisk = readdirSync(new URL('addon/src/', root)).filter((f) => f.endsWith('.cc')).map((f) => `addon/src/${f}`).sort();
  t.deepEqual(fromCmake, onDisk);
});

test('the published package holds every source the build compiles (nsbox-init and nsbox-netconf too)', (t) => {
  const cmake = readFileSync(new URL('addon/CMakeLists.txt', root), 'utf8');
  const sources = [...cmake.matchAll(/\b((?:src|init)\/\w+\.cc?)\b/g)].map((m) => `addon/${m[1]}`);
  t.true(sources.some((s) => s.endsWith('nsbox_netconf.c')) && sources.some((s) => s.endsWith('nsbox_init.c')));
  const files = (JSON.parse(readFileSync(new URL('package.json', root), 'utf8')) as { files: string[] }).files;
  for (const source of sources) t.true(files.some((entry) => source === entry || source.startsWith(`${entry}/`)), `${source} is not in package.json "files"`);
});
