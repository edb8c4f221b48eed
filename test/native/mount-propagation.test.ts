// SPDX-License-Identifier: Apache-2.0
// Bind propagation: by default (rprivate) a mount the host makes below a bind's source after the
// sandbox started stays on the host (the temp dir's name avoids 'nsbox': concurrent leak checks
// watch mounts that name it); with 'rslave' it appears inside. Nothing a sandbox mounts
// ever reaches the host.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Sandbox } from '../../src/index.js';

test.serial('rslave binds see host mounts made later; rprivate binds do not; sandbox mounts never reach the host', async (t) => {
  const source = mkdtempSync(join(tmpdir(), 'bind-propagation-'));
  mkdirSync(join(source, 'later'));
  // The source must itself be a mount the host shares, as with a host directory under a shared root.
  execFileSync('mount', ['--bind', source, source]);
  execFileSync('mount', ['--make-shared', source]);
  t.teardown(() => {
    execFileSync('umount', ['-R', source]);
    rmSync(source, { recursive: true, force: true });
  });
  await using box = await Sandbox.create({
    image: 'host',
    mounts: [
      { type: 'bind', source, target: '/slave', propagation: 'rslave' },
      { type: 'bind', source, target: '/private' },
    ],
  });
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'later', join(source, 'later')]);
  execFileSync('sh', ['-c', `echo from-the-host > ${join(source, 'later', 'file')}`]);
  const seen = await box.exec(['sh', '-c', 'cat /slave/later/file; cat /private/later/file 2>&1 || true'], { reject: false });
  t.is(seen.stdout.split('\n')[0], 'from-the-host', 'the slave bind received the host mount');
  t.regex(seen.stdout.split('\n')[1]!, /No such file/, 'the private bind did not');
  // A mount made inside, on the slave bind, stays inside.
  await box.exec(['mount', '-t', 'tmpfs', 'inner', '/slave/later'], { reject: false });
  t.false(readFileSync('/proc/self/mountinfo', 'utf8').includes(' inner '), 'no sandbox mount on the host');
});

test('propagation takes rprivate or rslave only', async (t) => {
  await t.throwsAsync(Sandbox.create({ image: 'host', mounts: [{ type: 'bind', source: '/tmp', target: '/x', propagation: 'rshared' as never }] }), { code: 'ERR_INVALID_OPTION', message: /propagation/ });
});
