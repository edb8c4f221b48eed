// SPDX-License-Identifier: Apache-2.0
// The C++ → TypeScript error contract: each setup stage's failure arrives as a SetupError
// with the right stage, syscall and errno — from real bad inputs where one exists, and
// through the fault-injection hook for the stages no input can break.
import test from 'ava';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, SetupError } from '../../src/index.js';
import { STAGES, stageNumber, type SetupStage } from '../../src/native/stages.js';
import { openFds, ownCgroups, probeRootfs, withFailStage, zombieChildren } from '../helpers/sandbox.js';

let image: string;
test.before(async () => {
  image = await probeRootfs();
  // Load the addon and start its exit watcher (an epoll fd and an eventfd) before fds are counted.
  await run({ image, command: ['true'] });
});

async function setupFailure(t: import('ava').ExecutionContext, options: Parameters<typeof run>[0]): Promise<SetupError> {
  const error = await t.throwsAsync(run(options), { instanceOf: SetupError });
  return error!;
}

test('overlay-mount: an upper layer inside a lower layer is refused by overlayfs', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'nsbox-overlap-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, 'upper'));
  const error = await setupFailure(t, { image: { layers: [image, join(dir, 'upper')] }, upperDir: dir, command: ['true'] });
  t.is(error.code, 'ERR_SETUP');
  t.is(error.stage, 'overlay-mount');
  t.is(error.syscall, 'mount');
  t.regex(error.message, /^Sandbox setup failed at overlay-mount: mount `.*root`: E[A-Z]+$/);
});

test('bind-mount: a directory cannot be bound over a file of the image', async (t) => {
  const error = await setupFailure(t, { image, command: ['true'], mounts: [{ type: 'bind', source: tmpdir(), target: '/etc/passwd' }] });
  t.is(error.stage, 'bind-mount');
  t.is(error.syscall, 'move_mount');
  t.is(error.errnoCode, 'EINVAL');
  t.is(error.path, '/etc/passwd');
});

test('tmpfs-mount: a tmpfs cannot be mounted on a file', async (t) => {
  const error = await setupFailure(t, { image, command: ['true'], mounts: [{ type: 'tmpfs', target: '/etc/passwd' }] });
  t.is(error.stage, 'tmpfs-mount');
  t.is(error.errnoCode, 'ENOTDIR');
});

test('mkdir: the working directory cannot be created under a file', async (t) => {
  const error = await setupFailure(t, { image, command: ['true'], cwd: '/etc/passwd/sub' });
  t.is(error.stage, 'mkdir');
  t.is(error.errnoCode, 'ENOTDIR');
});

test('cwd: chdir into a file', async (t) => {
  const error = await setupFailure(t, { image, command: ['true'], cwd: '/etc/passwd' });
  t.is(error.stage, 'cwd');
  t.is(error.syscall, 'chdir');
  t.is(error.errnoCode, 'ENOTDIR');
});

test('a symlink in the image cannot point a mount at the host', async (t) => {
  // /evil -> /etc inside the image resolves inside the image, never to the host's /etc.
  const dir = mkdtempSync(join(tmpdir(), 'nsbox-evil-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const { symlinkSync } = await import('node:fs');
  symlinkSync('/etc', join(dir, 'evil'));
  const result = await run({ image: { layers: [image, dir] }, command: ['probe', 'cat', '/evil/mounted/marker'], mounts: [{ type: 'tmpfs', target: '/evil/mounted' }], reject: false });
  t.is(result.exitCode, 2, 'the tmpfs landed inside the image (empty), the host /etc is untouched');
  const { existsSync } = await import('node:fs');
  t.false(existsSync('/etc/mounted'));
});

const forced: SetupStage[] = [
  'id-map', 'cgroup-attach', 'cgroup-namespace', 'mount-private', 'scratch-mount', 'bind-mount', 'pivot-root', 'readonly-root',
  'hostname', 'loopback', 'rlimits', 'cwd', 'capabilities', 'user', 'no-new-privs', 'parent-death', 'stdio', 'seccomp',
];

for (const stage of forced) {
  // Serial, so that nothing else of this process has a cgroup or a child while we count.
  test.serial(`a failure at ${stage} is ERR_SETUP naming ${stage}, and leaves nothing behind`, async (t) => {
    const fds = openFds().length;
    const error = await setupFailure(t, withFailStage({ image, command: ['true'] }, stageNumber(stage)));
    t.is(error.code, 'ERR_SETUP');
    t.is(error.stage, stage);
    t.is(error.errnoCode, 'EPERM');
    t.regex(error.message, new RegExp(`^Sandbox setup failed at ${stage}: forced`));
    t.deepEqual(ownCgroups(), []);
    t.deepEqual(zombieChildren(), []);
    t.is(openFds().length, fds);
  });
}

test('the stage list matches the addon’s enum', async (t) => {
  const { readFileSync } = await import('node:fs');
  const header = readFileSync(new URL('../../addon/src/sync_msg.h', import.meta.url), 'utf8');
  const names = [...header.matchAll(/NSBOX_STAGE_([A-Z_]+)[,\s]/g)].map((m) => m[1]!).filter((n) => n !== 'COUNT');
  t.deepEqual(names.map((n) => n.toLowerCase().replaceAll('_', '-')), STAGES.map((s) => (s === 'unknown' ? 'none' : s)));
});
