// SPDX-License-Identifier: Apache-2.0
// run({ image: 'host:port/repo:tag' }): the image store pulls as `pull` says, and the image's config applies.
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, ImageStore } from '../../src/index.js';
import { busyboxOciLayout, MOTD_TEXT } from '../helpers/probe-image.js';
import { startRegistry, type TestRegistry } from './helpers/registry.js';

// The default store lives under $NSBOX_HOME: a private one for this file's process.
const home = mkdtempSync(join(tmpdir(), 'nsbox-home-'));
process.env.NSBOX_HOME = home;
let registry: TestRegistry;
let stopped = false;

test.before(async () => {
  registry = await startRegistry();
  const { dir, tag } = await busyboxOciLayout();
  await registry.push(dir, tag, 'busybox:1');
});
test.after.always(async () => {
  if (!stopped) await registry?.stop();
  rmSync(home, { recursive: true, force: true });
});

test.serial('pull: never refuses an image that is not in the store', async (t) => {
  const error = await t.throwsAsync(run({ image: `${registry.host}/busybox:1`, command: ['true'], pull: 'never' }));
  t.is((error as { code?: string }).code, 'ERR_IMAGE_NOT_FOUND');
});

test.serial('a reference is pulled when missing, then run from the store with its layers and config', async (t) => {
  const result = await run({ image: `${registry.host}/busybox:1`, command: ['sh', '-c', 'ls /bin/yes 2>&1; cat /etc/motd; echo $PATH'] });
  t.regex(result.stdout, /No such file/);
  t.true(result.stdout.includes(MOTD_TEXT));
  t.regex(result.stdout, /\/usr\/bin/);
  t.regex(result.image, new RegExp(`^${registry.host}/busybox:1@sha256:[0-9a-f]{64}$`));
  const store = await ImageStore.open();
  t.is((await store.list()).length, 1);
  // Now in the store: pull: never runs it without the registry.
  const again = await run({ image: `${registry.host}/busybox:1`, command: ['cat', '/etc/motd'], pull: 'never' });
  t.is(again.stdout, MOTD_TEXT);
});

test.serial('pull: always goes to the registry every time', async (t) => {
  await registry.stop();
  stopped = true;
  const error = await t.throwsAsync(run({ image: `${registry.host}/busybox:1`, command: ['true'], pull: 'always' }));
  t.is((error as { code?: string }).code, 'ERR_REGISTRY');
});

test.serial('an invalid pull policy is an invalid option', async (t) => {
  const error = await t.throwsAsync(run({ image: 'busybox', command: ['true'], pull: 'sometimes' as never }));
  t.is((error as { code?: string }).code, 'ERR_INVALID_OPTION');
});
