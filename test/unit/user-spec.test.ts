// SPDX-License-Identifier: Apache-2.0
import test from 'ava';
import { resolveUser } from '../../src/user-spec.js';

const passwd = 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001:app:/home/app:/bin/sh\n# comment\nbroken\n';
const group = 'root:x:0:\nstaff:x:50:app\napps:x:1001:\nother:x:60:root,app\n';

test('names and ids, as Docker resolves them', (t) => {
  t.deepEqual(resolveUser('0', passwd, group), { uid: 0, gid: 0, groups: [0, 60], home: '/root' });
  t.deepEqual(resolveUser('app', passwd, group), { uid: 1000, gid: 1001, groups: [1001, 50, 60], home: '/home/app' });
  t.deepEqual(resolveUser('app:staff', passwd, group), { uid: 1000, gid: 50, groups: [50, 60], home: '/home/app' });
  t.deepEqual(resolveUser('4242', passwd, group), { uid: 4242, gid: 4242, groups: [4242], home: '/' });
  t.deepEqual(resolveUser('4242:7', undefined, undefined), { uid: 4242, gid: 7, groups: [7], home: '/' });
});

test('unknown names are invalid options', (t) => {
  t.throws(() => resolveUser('ghost', passwd, group), { message: /ghost/ });
  t.throws(() => resolveUser('app:ghosts', passwd, group), { message: /ghosts/ });
  t.throws(() => resolveUser('99999999999', passwd, group), { message: /out of range/ });
});
