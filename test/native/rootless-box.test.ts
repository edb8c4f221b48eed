// SPDX-License-Identifier: Apache-2.0
// Long-lived sandboxes for an ordinary user (nobody): exec joins the sandbox's user namespace too.
import test from 'ava';
import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { runAsNobody } from '../helpers/capabilities.js';

const fixture = new URL('../fixtures/rootless-box.ts', import.meta.url).pathname;
let home: string;

test.before(() => {
  home = mkdtempSync(join(tmpdir(), 'nsbox-rootless-box-'));
  chmodSync(home, 0o777);
});
test.after.always(() => {
  rmSync(home, { recursive: true, force: true });
});

test('a rootless sandbox takes execs and files: root inside, nobody outside', async (t) => {
  const [command, ...args] = runAsNobody([process.execPath, '--import', 'tsx', fixture, JSON.stringify({ image: 'host' })]);
  const { stdout } = await promisify(execFile)(command!, args, {
    env: { PATH: process.env.PATH, NSBOX_HOME: join(home, 'state'), NSBOX_RUN_DIR: join(home, 'run'), HOME: home, TSX_TSCONFIG_PATH: undefined },
    cwd: process.cwd(),
  });
  const outcome = JSON.parse(stdout) as { ok: boolean; message?: string; id?: string; seen?: string; back?: string; tty?: string };
  t.true(outcome.ok, outcome.message);
  t.is(outcome.id, '0\n2\nnsbox-init\n', 'uid 0 in the sandbox user namespace, pid 2 in its pid namespace');
  t.is(outcome.seen, 'hello\n0\n', 'a file the host wrote belongs to root inside');
  t.is(outcome.back, 'back\n');
  t.is(outcome.tty, '0 0 620\r\n', 'a tty exec’s terminal is its user’s');
});
