// SPDX-License-Identifier: Apache-2.0
// Parsing mountinfo into a cgroup layout: hybrid, pure v2, co-mounted v1 controllers, escapes, overmounts.

import test from 'ava';
import { layoutFromMountinfo } from '../../src/cgroup/detect.js';

const noControllers = (): string[] => [];

test('a hybrid host: v1 controllers, named hierarchies left out, an empty unified mount', (t) => {
  const mountinfo = [
    '31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755',
    '32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu',
    '35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory',
    '39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids',
    '40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd',
    '41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw',
    '',
  ].join('\n');
  const layout = layoutFromMountinfo(mountinfo, (mountPoint) => (mountPoint === '/sys/fs/cgroup/unified' ? ['hugetlb'] : []));
  t.deepEqual(layout, {
    mode: 'hybrid',
    v2: { mountPoint: '/sys/fs/cgroup/unified', mountPoints: ['/sys/fs/cgroup/unified'], controllers: ['hugetlb'] },
    v1: [
      { mountPoint: '/sys/fs/cgroup/cpu', controllers: ['cpu'] },
      { mountPoint: '/sys/fs/cgroup/memory', controllers: ['memory'] },
      { mountPoint: '/sys/fs/cgroup/pids', controllers: ['pids'] },
    ],
    v1Controllers: { cpu: '/sys/fs/cgroup/cpu', memory: '/sys/fs/cgroup/memory', pids: '/sys/fs/cgroup/pids' },
  });
});

test('co-mounted v1 controllers share one mount point, and optional fields are skipped', (t) => {
  const mountinfo = [
    '25 18 0:22 / /sys/fs/cgroup ro,nosuid shared:9 - tmpfs tmpfs ro,mode=755',
    '28 25 0:25 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev shared:11 master:3 - cgroup cgroup rw,cpu,cpuacct',
    '29 25 0:26 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid shared:12 - cgroup cgroup rw,net_cls,net_prio',
    '30 25 0:27 / /sys/fs/cgroup/memory rw shared:13 - cgroup cgroup rw,memory,clone_children',
  ].join('\n');
  const layout = layoutFromMountinfo(mountinfo, noControllers);
  t.is(layout.mode, 'v1');
  t.is(layout.v2, null);
  t.deepEqual(layout.v1[0], { mountPoint: '/sys/fs/cgroup/cpu,cpuacct', controllers: ['cpu', 'cpuacct'] });
  t.is(layout.v1Controllers.cpu, '/sys/fs/cgroup/cpu,cpuacct');
  t.is(layout.v1Controllers.cpuacct, '/sys/fs/cgroup/cpu,cpuacct');
  t.is(layout.v1Controllers.net_prio, '/sys/fs/cgroup/net_cls,net_prio');
  t.deepEqual(layout.v1[2].controllers, ['memory']);
});

test('a pure v2 host reads its controllers from the mount point', (t) => {
  const mountinfo = '27 22 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n';
  const seen: string[] = [];
  const layout = layoutFromMountinfo(mountinfo, (mountPoint) => {
    seen.push(mountPoint);
    return ['cpuset', 'cpu', 'io', 'memory', 'pids'];
  });
  t.is(layout.mode, 'v2');
  t.deepEqual(seen, ['/sys/fs/cgroup']);
  t.deepEqual(layout.v2?.controllers, ['cpuset', 'cpu', 'io', 'memory', 'pids']);
  t.deepEqual(layout.v1, []);
  t.deepEqual(layout.v1Controllers, {});
});

test('every cgroup2 mount point is listed, the first one is used', (t) => {
  const mountinfo = [
    '27 22 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw',
    '90 80 0:26 / /var/lib/x/cgroup\\040v2 rw - cgroup2 cgroup2 rw',
  ].join('\n');
  const layout = layoutFromMountinfo(mountinfo, noControllers);
  t.deepEqual(layout.v2?.mountPoints, ['/sys/fs/cgroup', '/var/lib/x/cgroup v2']);
  t.is(layout.v2?.mountPoint, '/sys/fs/cgroup');
});

test('a mount hidden by a later mount on the same point does not count', (t) => {
  const mountinfo = [
    '27 22 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw',
    '95 27 0:55 / /sys/fs/cgroup rw - tmpfs tmpfs rw',
  ].join('\n');
  const layout = layoutFromMountinfo(mountinfo, noControllers);
  t.is(layout.mode, 'none');
  t.is(layout.v2, null);
});
