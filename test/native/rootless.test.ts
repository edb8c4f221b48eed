// SPDX-License-Identifier: Apache-2.0
// Rootless: an ordinary user (nobody) runs sandboxes through a user namespace.
import test from 'ava';
import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { busyboxOciLayout } from '../helpers/probe-image.js';
import { NOBODY_UID, runAsNobody } from '../helpers/capabilities.js';
import { probeRootfs } from '../helpers/sandbox.js';

const fixture = new URL('../fixtures/rootless-run.ts', import.meta.url).pathname;
let image: string;
let home: string;

test.before(async () => {
  image = await probeRootfs();
  home = mkdtempSync(join(tmpdir(), 'nsbox-rootless-'));
  chmodSync(home, 0o777);
});
test.after.always(() => {
  rmSync(home, { recursive: true, force: true });
});

// Long enough for the host to read the uid of the sandbox's pid 1 while it runs.
const idThenWait = ['sh', '-c', 'probe id; sleep 0.5'];

interface Outcome {
  ok: boolean;
  code?: string;
  message?: string;
  hostUid?: number;
  exitCode?: number;
  stdout?: string;
  stderr?: string;
}

async function asNobody(options: object): Promise<Outcome> {
  const [command, ...args] = runAsNobody([process.execPath, '--import', 'tsx', fixture, JSON.stringify(options)]);
  const { stdout } = await promisify(execFile)(command!, args, {
    env: { PATH: process.env.PATH, NSBOX_HOME: join(home, 'state'), NSBOX_RUN_DIR: join(home, 'run'), HOME: home, TSX_TSCONFIG_PATH: undefined },
    cwd: process.cwd(),
  });
  return JSON.parse(stdout) as Outcome;
}

test('a rootless run maps root inside to the user outside', async (t) => {
  const outcome = await asNobody({ image, command: idThenWait, cgroup: false });
  t.true(outcome.ok, outcome.message);
  t.is(outcome.stdout, 'uid=0 gid=0 groups=\n', 'a one-id map denies setgroups: no supplementary groups');
  t.is(outcome.hostUid, NOBODY_UID);
});

test('a rootless run can take a non-root user of the image', async (t) => {
  const outcome = await asNobody({ image, command: idThenWait, user: 'app', cgroup: false });
  t.true(outcome.ok, outcome.message);
  t.regex(outcome.stdout!, /^uid=1000 gid=1000/);
  t.is(outcome.hostUid, NOBODY_UID);
});

test('rootless, the sandbox is isolated the same way', async (t) => {
  const outcome = await asNobody({ image, command: ['sh', '-c', 'echo $$; probe hostname; probe net; echo x > /x && echo x > /tmp/x && echo wrote'], hostname: 'rootless-box', cgroup: false });
  t.true(outcome.ok, outcome.message);
  t.is(outcome.stdout, '2\nrootless-box\nlo\nwrote\n');
});

test('rootless with the host image', async (t) => {
  const outcome = await asNobody({ image: 'host', command: ['node', '-e', 'console.log(process.getuid())'], cgroup: false });
  t.true(outcome.ok, outcome.message);
  t.is(outcome.stdout, '0\n');
});

test('rootless with an OCI image: layers unpack in the user-xattr whiteout form overlayfs reads', async (t) => {
  const { dir } = await busyboxOciLayout();
  const outcome = await asNobody({ image: dir, command: ['sh', '-c', 'ls /bin/yes 2>&1; cat /etc/motd'], cgroup: false });
  t.true(outcome.ok, outcome.message);
  t.regex(outcome.stdout!, /No such file/);
  t.regex(outcome.stdout!, /layer 2/);
});

test('limits that need a cgroup the user cannot write are ERR_UNSUPPORTED, saying what to do', async (t) => {
  const outcome = await asNobody({ image, command: ['true'] });
  t.false(outcome.ok);
  t.is(outcome.code, 'ERR_UNSUPPORTED');
  t.regex(outcome.message!, /cgroup: false/);
  t.regex(outcome.message!, /root|delegate/i);
});

test('explicit limits with cgroup: false are an invalid option', async (t) => {
  const outcome = await asNobody({ image, command: ['true'], cgroup: false, limits: { memory: '64MiB' } });
  t.is(outcome.code, 'ERR_INVALID_OPTION');
});

// Serial: while it runs, /etc/subuid and /etc/subgid grant nobody a range, which changes how
// every rootless run of nobody is mapped.
test.serial('with /etc/subuid and /etc/subgid ranges, newuidmap/newgidmap map a whole id range', async (t) => {
  const files = ['/etc/subuid', '/etc/subgid'];
  const saved = files.map((f) => (existsSync(f) ? readFileSync(f, 'utf8') : undefined));
  t.teardown(() => files.forEach((f, i) => (saved[i] === undefined ? rmSync(f, { force: true }) : writeFileSync(f, saved[i]!))));
  for (const [i, f] of files.entries()) writeFileSync(f, `${saved[i] ?? ''}nobody:200000:65536\n`);

  const root = await asNobody({ image, command: idThenWait, cgroup: false });
  t.true(root.ok, root.message);
  t.is(root.stdout, 'uid=0 gid=0 groups=0\n', 'setgroups is allowed with helper-written maps');
  t.is(root.hostUid, NOBODY_UID);
  const app = await asNobody({ image, command: idThenWait, user: 'app', cgroup: false });
  t.true(app.ok, app.message);
  t.regex(app.stdout!, /^uid=1000 gid=1000/);
  t.is(app.hostUid, 200000 + 1000 - 1, 'container uid 1000 is subordinate id 999 of the range');
});
