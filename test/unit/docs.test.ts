// SPDX-License-Identifier: Apache-2.0
// `npm run docs` builds, and every public export carries an @example.
import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

test('typedoc documents every export without errors, and each has an example', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'nsbox-docs-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  await promisify(execFile)(process.execPath, ['node_modules/typedoc/bin/typedoc', '--out', join(dir, 'html'), '--json', join(dir, 'api.json'), '--logLevel', 'Error']);
  const project = JSON.parse(readFileSync(join(dir, 'api.json'), 'utf8')) as { children: Array<{ name: string; comment?: { blockTags?: Array<{ tag: string }> }; signatures?: Array<{ comment?: { blockTags?: Array<{ tag: string }> } }> }> };
  const withoutExample = project.children
    .filter((c) => ![c.comment, ...(c.signatures ?? []).map((s) => s.comment)].some((comment) => comment?.blockTags?.some((b) => b.tag === '@example')))
    .map((c) => c.name);
  t.deepEqual(withoutExample, []);
  t.true(project.children.length >= 15);
});
