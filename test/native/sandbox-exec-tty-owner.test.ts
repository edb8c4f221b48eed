// SPDX-License-Identifier: Apache-2.0
// A terminal exec belongs to the user it runs as (as Docker/runc give the console to the process
// user): owner the user, group tty when the image has one (else the user's), mode 0620, so mesg
// and other programs that check or change their terminal work.
import test from 'ava';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Sandbox } from '../../src/index.js';

let rootfs: string;

// A busybox rootfs whose /etc/group has a tty group (gid 5, as Debian's).
test.before(() => {
  rootfs = mkdtempSync(join(tmpdir(), 'nsbox-tty-owner-'));
  for (const dir of ['bin', 'etc', 'tmp', 'proc', 'dev', 'sys']) mkdirSync(join(rootfs, dir));
  copyFileSync('/usr/bin/busybox', join(rootfs, 'bin/busybox'));
  for (const applet of ['sh', 'stat', 'tty']) symlinkSync('busybox', join(rootfs, 'bin', applet));
  writeFileSync(join(rootfs, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/tmp:/bin/sh\n');
  writeFileSync(join(rootfs, 'etc/group'), 'root:x:0:\ntty:x:5:\napp:x:1000:\n');
});
test.after.always(() => {
  rmSync(rootfs, { recursive: true, force: true });
});

for (const userns of [false, true]) {
  test(`a tty exec as a non-root user owns its terminal${userns ? ' (in a user namespace)' : ''}`, async (t) => {
    // The host image's /etc/group has no tty group: the terminal takes the user's group.
    await using box = await Sandbox.create({ image: 'host', userns });
    const seen = await box.exec(['sh', '-c', 'stat -c "%u %g %a" "$(tty)"; stat -L -c "%u" /proc/self/fd/0; mesg n; stat -c "%a" "$(tty)"'], { tty: true, user: '1000:1001' });
    t.is(seen.stdout, '1000 1001 620\r\n1000\r\n600\r\n', 'the user may change its own terminal (mesg n)');
    const named = await box.exec(['sh', '-c', 'stat -c "%U %a" "$(tty)"'], { tty: true, user: 'nobody' });
    t.is(named.stdout, 'nobody 620\r\n');
    const root = await box.exec(['sh', '-c', 'stat -c "%u %g %a" "$(tty)"'], { tty: true });
    t.is(root.stdout, '0 0 620\r\n');
  });
}

test('the terminal’s group is the image’s tty group when it has one', async (t) => {
  await using box = await Sandbox.create({ image: rootfs });
  const seen = await box.exec(['sh', '-c', 'stat -c "%u %g %a" "$(tty)"'], { tty: true, user: 'app' });
  t.is(seen.stdout, '1000 5 620\r\n');
});
