// SPDX-License-Identifier: Apache-2.0
// Named volumes: data written in one sandbox is there in the next; in-use volumes are kept.
import test from 'ava';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// A private state dir: volumes live under $NSBOX_HOME/volumes. Set before nsbox reads it.
const home = mkdtempSync(join(tmpdir(), 'nsbox-volumes-test-'));
process.env.NSBOX_HOME = home;
const { createVolume, listVolumes, removeVolume, run, Sandbox } = await import('../../src/index.js');

test.after.always(() => {
  rmSync(home, { recursive: true, force: true });
});

test.serial('a volume keeps what one sandbox wrote for the next, and for a long-lived sandbox', async (t) => {
  const mounts = [{ type: 'volume', source: 'keep', target: '/data' }] as const;
  await run({ image: 'host', command: ['sh', '-c', 'echo first > /data/file'], mounts: [...mounts] });
  t.is((await run({ image: 'host', command: ['cat', '/data/file'], mounts: [...mounts] })).stdout, 'first\n');
  await using box = await Sandbox.create({ image: 'host', mounts: [{ type: 'volume', source: 'keep', target: '/srv/data', readonly: true }] });
  t.is((await box.exec(['cat', '/srv/data/file'])).stdout, 'first\n');
  const denied = await box.exec(['sh', '-c', 'echo x > /srv/data/other'], { reject: false });
  t.not(denied.exitCode, 0, 'a read-only volume mount refuses writes');
  t.deepEqual(listVolumes().map((v) => v.name), ['keep']);
  t.is(listVolumes()[0]!.path, join(home, 'volumes', 'keep', '_data'));
  t.throws(() => removeVolume('keep'), { code: 'ERR_IN_USE' });
  await box.remove();
  removeVolume('keep');
  t.false(existsSync(join(home, 'volumes', 'keep')));
  t.deepEqual(listVolumes(), []);
});

test.serial('volume names are checked', async (t) => {
  t.throws(() => createVolume('../escape'), { code: 'ERR_INVALID_OPTION' });
  t.throws(() => removeVolume('missing-volume'), { code: 'ERR_NOT_FOUND' });
  await t.throwsAsync(run({ image: 'host', command: ['true'], mounts: [{ type: 'volume', source: 'a/b', target: '/x' }] }), { code: 'ERR_INVALID_OPTION', message: /volume name/ });
  t.is(createVolume('made').name, 'made');
  t.true(existsSync(join(home, 'volumes', 'made', '_data')));
  removeVolume('made');
});
