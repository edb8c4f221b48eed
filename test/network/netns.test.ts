// SPDX-License-Identifier: Apache-2.0
// The addon's persistent network namespaces: a new namespace with only loopback, bound on a file in a
// shared mount point (as iproute2's /run/netns), outliving the call, removable twice, refused twice.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readlinkSync } from 'node:fs';
import { createNetns, netnsDir, removeNetns } from '../../src/network/netns.js';
import { newId } from './helpers.js';

test('a namespace is made, bound on its file, and removed', (t) => {
  const id = newId();
  const path = createNetns(id);
  t.teardown(() => removeNetns(path));
  t.is(path, `${netnsDir()}/${id}`);
  const mountinfo = readFileSync('/proc/self/mountinfo', 'utf8').split('\n');
  const dirLine = mountinfo.find((line) => line.split(' ')[4] === netnsDir());
  t.truthy(dirLine, 'the directory is a mount point');
  t.regex(dirLine!, / shared:\d+/);
  t.true(mountinfo.some((line) => line.split(' ')[4] === path && line.includes('nsfs')));
  // Another namespace than ours, with loopback only (/proc/net follows the namespace; /sys/class/net is the host's sysfs).
  const inside = execFileSync('nsenter', [`--net=${path}`, 'readlink', '/proc/self/ns/net'], { encoding: 'utf8' }).trim();
  t.not(inside, readlinkSync('/proc/self/ns/net'));
  t.regex(execFileSync('nsenter', [`--net=${path}`, 'ip', '-o', 'link', 'show', 'lo'], { encoding: 'utf8' }), /<LOOPBACK,UP,LOWER_UP>/);
  t.is(execFileSync('nsenter', [`--net=${path}`, 'cat', '/proc/net/dev'], { encoding: 'utf8' }).split('\n').filter((l) => l.includes(':')).map((l) => l.split(':')[0]!.trim()).join(), 'lo');

  t.throws(() => createNetns(id), { code: 'ERR_NETWORK', message: /open: EEXIST/ });
  removeNetns(path);
  removeNetns(path);
  t.false(existsSync(path));
  t.false(readFileSync('/proc/self/mountinfo', 'utf8').includes(path));
});
