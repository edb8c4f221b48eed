// SPDX-License-Identifier: Apache-2.0
// The image commands of the built CLI (pull, images, inspect, push, rmi, and run pulling as needed) against a real docker-registry.
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import test from 'ava';
import { dir } from 'tmp-promise';
import { busyboxOciLayout, MOTD_TEXT, OCI_TAG } from '../helpers/probe-image.js';
import { startRegistry, type TestRegistry } from '../registry/helpers/registry.js';

const execFileAsync = promisify(execFile);
const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const bin = path.join(repoRoot, 'bin', 'nsbox.js');
const scratch = dir({ prefix: 'nsbox-cli-images-test-', unsafeCleanup: true });
let registry: TestRegistry;

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI with its own store ($NSBOX_HOME = `home`) and no Docker credentials. */
function nsbox(home: string, args: string[]): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env, NSBOX_HOME: home, DOCKER_CONFIG: path.join(home, 'no-docker') };
    const child = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env, timeout: 60_000, killSignal: 'SIGKILL' });
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

let homes = 0;
async function freshHome(): Promise<string> {
  const home = path.join((await scratch).path, `home-${homes++}`);
  await fs.mkdir(home);
  return home;
}

test.before(async () => {
  if (!existsSync(path.join(repoRoot, 'dist', 'cli.js'))) throw new Error('dist/cli.js is missing: build first (`npx tsup`, or `npm test`)');
  registry = await startRegistry();
  await registry.push((await busyboxOciLayout()).dir, OCI_TAG, 'busybox:1');
});

test.after.always(async () => {
  await registry?.stop();
  await (await scratch).cleanup();
});

test('pull prints a line per layer, the digest and the reference; images, inspect and images --format json agree', async (t) => {
  const home = await freshHome();
  const image = `${registry.host}/busybox:1`;
  const pulled = await nsbox(home, ['pull', image]);
  t.is(pulled.code, 0, pulled.stderr);
  const lines = pulled.stdout.trim().split('\n');
  t.is(lines.filter((line) => /^[0-9a-f]{12}: Pull complete \(\d+(\.\d+)?[kM]?B\)$/.test(line)).length, 2, pulled.stdout);
  const digest = /^Digest: (sha256:[0-9a-f]{64})$/m.exec(pulled.stdout)?.[1];
  t.truthy(digest);
  t.is(lines.at(-1), image);

  const inspected = await nsbox(home, ['inspect', image]);
  t.is(inspected.code, 0, inspected.stderr);
  const [info] = JSON.parse(inspected.stdout) as Array<{ digest: string; size: number; config: { cmd: string[] }; layers: unknown[] }>;
  t.is(info.digest, digest!);
  t.deepEqual(info.config.cmd, ['sh']);
  t.is(info.layers.length, 2);

  const table = await nsbox(home, ['images']);
  t.is(table.code, 0, table.stderr);
  const rows = table.stdout.trim().split('\n').map((line) => line.split(/\s{3,}/));
  t.deepEqual(rows[0], ['REPOSITORY', 'TAG', 'DIGEST', 'SIZE']);
  t.deepEqual(rows.slice(1).map((row) => row.slice(0, 3)), [[`${registry.host}/busybox`, '1', digest!.slice(7, 19)]]);
  t.regex(rows[1][3], /^1\.\d\dMB$/);

  const json = await nsbox(home, ['images', '--format', 'json']);
  t.deepEqual(JSON.parse(json.stdout), JSON.parse(inspected.stdout));
  t.is((await nsbox(home, ['images', '-q'])).stdout, `${digest}\n`);
});

test('pull on a terminal draws progress bars in place', async (t) => {
  const home = await freshHome();
  // script(1) gives the CLI a pseudo-terminal, as a user's shell would.
  const command = [process.execPath, bin, 'pull', `${registry.host}/busybox:1`].map((a) => `'${a}'`).join(' ');
  const { stdout } = await execFileAsync('script', ['-qec', command, '/dev/null'], { env: { ...process.env, NSBOX_HOME: home, DOCKER_CONFIG: path.join(home, 'x') } });
  t.true(stdout.includes('\x1b[2K'), JSON.stringify(stdout));
  t.regex(stdout, /[0-9a-f]{12}: Pull complete/);
  t.regex(stdout, /Digest: sha256:[0-9a-f]{64}/);
});

test('push --as mounts the blobs on the same registry; skopeo sees the new tag with the same digest', async (t) => {
  const home = await freshHome();
  await nsbox(home, ['pull', '-q', `${registry.host}/busybox:1`]);
  const pushed = await nsbox(home, ['push', `${registry.host}/busybox:1`, '--as', `${registry.host}/copies/busybox:2`]);
  t.is(pushed.code, 0, pushed.stderr);
  t.is(pushed.stdout.match(/: Mounted from another repository/g)?.length, 3, pushed.stdout);
  t.regex(pushed.stdout, /Blobs: 0 sent, 3 mounted from another repository, 0 already there/);
  const digest = /digest: (sha256:[0-9a-f]{64})$/m.exec(pushed.stdout)?.[1];
  const { stdout } = await execFileAsync('skopeo', ['inspect', '--tls-verify=false', `docker://${registry.host}/copies/busybox:2`]);
  t.is(JSON.parse(stdout).Digest, digest);
  const again = await nsbox(home, ['push', `${registry.host}/copies/busybox:2`]);
  t.is(again.stdout.match(/: Layer already exists/g)?.length, 3, again.stdout);
});

test('rmi untags and deletes what nothing needs; a missing image is exit 1 naming it', async (t) => {
  const home = await freshHome();
  const image = `${registry.host}/busybox:1`;
  await nsbox(home, ['pull', '-q', image]);
  const removed = await nsbox(home, ['rmi', image, `${registry.host}/nothing:1`]);
  t.is(removed.code, 1);
  t.regex(removed.stdout, new RegExp(`^Untagged: ${image}$`, 'm'));
  t.regex(removed.stdout, /^Deleted: 4 blobs, 0 unpacked layers$/m);
  t.regex(removed.stderr, new RegExp(`nsbox: Image ${registry.host}/nothing:1 is not in the image store`));
  t.deepEqual(await fs.readdir(path.join(home, 'store/blobs/sha256')), []);
  t.is((await nsbox(home, ['images'])).stdout, 'REPOSITORY   TAG   DIGEST   SIZE\n');
});

test('run IMAGE pulls the image when the store lacks it', async (t) => {
  const home = await freshHome();
  const ran = await nsbox(home, ['run', `${registry.host}/busybox:1`, 'cat', '/etc/motd']);
  t.is(ran.code, 0, ran.stderr);
  t.is(ran.stdout, MOTD_TEXT);
  t.regex((await nsbox(home, ['images'])).stdout, new RegExp(`${registry.host}/busybox\\s+1\\s`));
});

test('errors: usage mistakes exit 125, registry failures exit 1 naming the reference', async (t) => {
  const home = await freshHome();
  const none = await nsbox(home, ['pull']);
  t.is(none.code, 125);
  t.regex(none.stderr, /'nsbox pull' needs one IMAGE\nSee 'nsbox pull --help'/);
  const flag = await nsbox(home, ['images', '--format', 'xml']);
  t.is(flag.code, 125);
  t.regex(flag.stderr, /--format is 'table' or 'json', not 'xml'/);
  const unknown = await nsbox(home, ['pull', `${registry.host}/busybox:nope`]);
  t.is(unknown.code, 1);
  t.regex(unknown.stderr, new RegExp(`^nsbox: Pulling ${registry.host}/busybox:nope: `));
  const notStored = await nsbox(home, ['push', `${registry.host}/busybox:1`]);
  t.is(notStored.code, 1);
  t.regex(notStored.stderr, /is not in the image store/);
  for (const name of ['pull', 'push', 'images', 'inspect', 'rmi']) {
    const help = await nsbox(home, [name, '--help']);
    t.is(help.code, 0);
    t.true(help.stdout.startsWith(`Usage: nsbox ${name} `), help.stdout);
  }
  t.regex((await nsbox(home, ['--help'])).stdout, /pull {6}Pull an image/);
});
