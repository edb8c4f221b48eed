// SPDX-License-Identifier: Apache-2.0
// Real sandboxes on a bridged network, before the sandbox's own setns stage exists: the host process
// is placed into the attachment's namespace with nsenter and runs the sandbox with network 'host'
// (which is then that namespace), binding the attachment's hosts file and resolv.conf over /etc's.
// A compose-like pair: `app` fetches http://db/ by name; the host reaches db through a published port.
import test from 'ava';
import { execFile, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { attachSandbox, type NetworkAttachment } from '../../src/index.js';
import { probeRootfs } from '../helpers/sandbox.js';
import { fetchFrom, freePort, newId, testNetwork } from './helpers.js';

const fixture = new URL('../fixtures/rootless-run.ts', import.meta.url).pathname;

function sandboxOptions(image: string, box: NetworkAttachment, hostname: string, command: string[]) {
  return {
    image,
    command,
    network: 'host',
    hostname,
    limits: { timeout: '30s' },
    mounts: [
      { type: 'bind', source: box.hostsFile, target: '/etc/hosts', readonly: true },
      { type: 'bind', source: box.resolvConf, target: '/etc/resolv.conf', readonly: true },
    ],
  };
}

function inNamespace(box: NetworkAttachment, options: object): string[] {
  return ['nsenter', `--net=${box.netnsPath}`, process.execPath, '--import', 'tsx', fixture, JSON.stringify(options)];
}

test.serial('an app sandbox fetches http://db/ by name, and the host reaches db on 127.0.0.1', async (t) => {
  const image = await probeRootfs();
  const network = await testNetwork(t);
  const port = await freePort();
  const db = await attachSandbox({ id: newId(), name: 'db', network: network.name, publish: [{ host: port, container: 80 }] });
  t.teardown(() => db.release());
  const app = await attachSandbox({ id: newId(), name: 'app', network: network.name });
  t.teardown(() => app.release());

  const serve = 'mkdir -p /tmp/srv && echo "db answers" > /tmp/srv/index.html && exec httpd -f -p 80 -h /tmp/srv';
  const [command, ...args] = inNamespace(db, sandboxOptions(image, db, 'db', ['sh', '-c', serve]));
  const server = spawn(command!, args, { stdio: 'ignore' });
  // The sandbox dies with its host process.
  t.teardown(() => {
    server.kill('SIGKILL');
  });
  let answer: { body?: string; error?: string } = {};
  for (let i = 0; i < 50 && answer.body === undefined; i++) {
    answer = await fetchFrom(undefined, `http://127.0.0.1:${port}/`, { timeoutMs: 500 });
    if (answer.body === undefined) await sleep(100);
  }
  t.deepEqual(answer, { body: 'db answers\n' });

  const [clientCommand, ...clientArgs] = inNamespace(app, sandboxOptions(image, app, 'app', ['sh', '-c', 'cat /etc/hosts; echo ---; wget -q -O- http://db/']));
  const { stdout } = await promisify(execFile)(clientCommand!, clientArgs, { timeout: 60_000 });
  const outcome = JSON.parse(stdout) as { ok: boolean; exitCode?: number; stdout?: string; stderr?: string; message?: string };
  t.true(outcome.ok, outcome.message);
  t.is(outcome.exitCode, 0, outcome.stderr);
  t.is(outcome.stdout, `${readFileSync(app.hostsFile, 'utf8')}---\ndb answers\n`);
});
