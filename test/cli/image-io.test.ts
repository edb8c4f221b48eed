// SPDX-License-Identifier: Apache-2.0
// `nsbox load`, `save` and `commit` (and `run --upper-dir`) end to end through the built CLI, with a private image store.
import { spawn } from 'node:child_process';
import { existsSync, openSync, closeSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { dir } from 'tmp-promise';
import { parseChanges } from '../../src/cli/commit.js';
import { imageArchives, tool, type ImageArchives } from '../helpers/image-archives.js';
import { busyboxOciLayout } from '../helpers/probe-image.js';
import { removeUmociImage, umociImage } from '../helpers/umoci-image.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const bin = path.join(repoRoot, 'bin', 'nsbox.js');
const scratch = dir({ prefix: 'nsbox-cli-image-io-', unsafeCleanup: true });
let archives: ImageArchives;

test.before(async () => {
  if (!existsSync(path.join(repoRoot, 'dist', 'cli.js'))) throw new Error('dist/cli.js is missing: build first (`npx tsup`, or `npm test`)');
  const at = path.join((await scratch).path, 'archives');
  await fs.mkdir(at);
  archives = await imageArchives((await umociImage()).layout, at);
});
test.after.always(async () => {
  await removeUmociImage();
  await (await scratch).cleanup();
});

let count = 0;
async function scratchPath(name: string): Promise<string> {
  return path.join((await scratch).path, `${name}-${count++}`);
}

interface CliResult {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

/** Runs the CLI with `home` as NSBOX_HOME; stdin from the file `stdinFile` (else /dev/null). */
function nsbox(home: string, args: string[], stdinFile?: string): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const stdin = stdinFile === undefined ? 'ignore' : openSync(stdinFile, 'r');
    const child = spawn(process.execPath, [bin, ...args], { stdio: [stdin, 'pipe', 'pipe'], env: { ...process.env, NSBOX_HOME: home }, timeout: 60_000, killSignal: 'SIGKILL' });
    if (typeof stdin === 'number') closeSync(stdin);
    const stdout: Buffer[] = [];
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => stdout.push(d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout: Buffer.concat(stdout), stderr }));
  });
}

test('load: -i FILE or stdin, names from the archive or -t; an unnamed image is an error saying what to do', async (t) => {
  const home = await scratchPath('home');
  const fromFile = await nsbox(home, ['load', '-i', archives.dockerArchive]);
  t.is(fromFile.stderr, '');
  t.is(fromFile.code, 0);
  t.is(fromFile.stdout.toString(), 'Loaded image: example.com/umoci:v3\n');

  const unnamed = await nsbox(home, ['load'], archives.ociArchive);
  t.is(unnamed.code, 1);
  t.regex(unnamed.stderr, /^nsbox: The image sha256:[0-9a-f]{64} in the input stream has no name \(only the tag `v3`\)/);

  const named = await nsbox(home, ['load', '-t', 'localhost/app'], archives.ociArchive);
  t.is(named.code, 0, named.stderr);
  t.is(named.stdout.toString(), 'Loaded image: localhost/app:v3\n');
  t.is((await nsbox(home, ['load', '-q', '--input', archives.docker25])).stdout.toString(), '');
});

test('save: -o FILE, stdout, and --format oci-dir, read by skopeo and umoci', async (t) => {
  const home = await scratchPath('home');
  await nsbox(home, ['load', '-i', archives.dockerArchive]);
  const file = await scratchPath('saved.tar');
  const toFile = await nsbox(home, ['save', '-o', file, 'example.com/umoci:v3']);
  t.is(toFile.code, 0, toFile.stderr);
  t.is(JSON.parse(await tool('skopeo', ['inspect', `oci-archive:${file}:example.com/umoci:v3`])).Layers.length, 3);

  const toStdout = await nsbox(home, ['save', 'example.com/umoci:v3']);
  t.is(toStdout.code, 0, toStdout.stderr);
  t.true(toStdout.stdout.equals(await fs.readFile(file)));

  const out = await scratchPath('layout');
  const toDir = await nsbox(home, ['save', 'example.com/umoci:v3', '--format', 'oci-dir', '-o', out]);
  t.is(toDir.code, 0, toDir.stderr);
  t.is((await tool('umoci', ['ls', '--layout', out])).trim(), 'example.com/umoci:v3');

  const missing = await nsbox(home, ['save', '-o', file, 'localhost/nope:1']);
  t.is(missing.code, 1);
  t.regex(missing.stderr, /^nsbox: Image localhost\/nope:1 is not in the image store/);
});

test('run --upper-dir, then commit: the new image has the change and the new Cmd', async (t) => {
  const home = await scratchPath('home');
  const loaded = await nsbox(home, ['load', '-t', 'localhost/busybox', '-i', (await busyboxOciLayout()).dir]);
  t.is(loaded.stdout.toString(), 'Loaded image: localhost/busybox:latest\n', loaded.stderr);
  const box = await scratchPath('box');
  await fs.mkdir(box);
  const ran = await nsbox(home, ['run', '--upper-dir', box, 'localhost/busybox:latest', 'sh', '-c', 'echo hello > /greeting; rm /etc/motd']);
  t.is(ran.code, 0, ran.stderr);
  const committed = await nsbox(home, ['commit', '--from', 'localhost/busybox:latest', '-c', 'CMD ["cat", "/greeting"]', '-c', 'ENV MODE=test', '-m', 'greet', box, 'localhost/greeter:1']);
  t.is(committed.code, 0, committed.stderr);
  t.regex(committed.stdout.toString(), /^sha256:[0-9a-f]{64}\n$/);
  const greeted = await nsbox(home, ['run', 'localhost/greeter:1']);
  t.is(greeted.stdout.toString(), 'hello\n', greeted.stderr);
  const checked = await nsbox(home, ['run', 'localhost/greeter:1', 'sh', '-c', 'test -e /etc/motd || echo gone; echo $MODE']);
  t.is(checked.stdout.toString(), 'gone\ntest\n');
});

test('usage errors exit 125; help for each command', async (t) => {
  const home = await scratchPath('home');
  const cases: Array<[string[], RegExp]> = [
    [['save'], /^nsbox: 'nsbox save' needs at least one IMAGE\nSee 'nsbox save --help'\.\n$/],
    [['save', '--format', 'zip', '-o', 'x', 'img'], /--format expects 'oci-archive' or 'oci-dir', got 'zip'/],
    [['save', '--format', 'oci-dir', 'img'], /--format oci-dir needs -o DIRECTORY/],
    [['load', 'extra.tar'], /'nsbox load' takes no arguments, got 'extra\.tar' \(use -i FILE\)/],
    [['load', '--frob'], /unknown flag '--frob'/],
    [['commit', 'box', 'x:1'], /'nsbox commit' needs --from IMAGE/],
    [['commit', '--from', 'a', 'box'], /'nsbox commit' needs UPPERDIR and NAME:TAG/],
    [['commit', '--from', 'a', '-c', 'FROM scratch', 'box', 'x:1'], /--change supports CMD, ENTRYPOINT, ENV, WORKDIR, USER and LABEL, not 'FROM'/],
  ];
  for (const [args, message] of cases) {
    const r = await nsbox(home, args);
    t.is(r.code, 125, args.join(' '));
    t.regex(r.stderr, message, args.join(' '));
  }
  for (const command of ['load', 'save', 'commit']) {
    const help = await nsbox(home, ['help', command]);
    t.is(help.code, 0);
    t.regex(help.stdout.toString(), new RegExp(`^Usage: nsbox ${command} `));
    t.deepEqual((await nsbox(home, [command, '--help'])).stdout, help.stdout);
  }
  t.regex((await nsbox(home, ['--help'])).stdout.toString(), /load +Load images.*\n +save +Save images.*\n +commit +Make an image/);
});

test('parseChanges reads Dockerfile instructions as docker commit --change does', (t) => {
  t.deepEqual(parseChanges(['CMD ["a", "b c"]', 'entrypoint /bin/run --fast', 'ENV A=1 B=two', 'ENV LEGACY some value', 'WORKDIR /srv', 'USER app:app', 'LABEL x=1 y=2', 'LABEL z=3']), {
    cmd: ['a', 'b c'],
    entrypoint: ['/bin/sh', '-c', '/bin/run --fast'],
    env: ['A=1', 'B=two', 'LEGACY=some value'],
    workingDir: '/srv',
    user: 'app:app',
    labels: { x: '1', y: '2', z: '3' },
  });
  for (const bad of ['CMD', 'CMD ["a", 1]', 'CMD [oops', 'WORKDIR relative', 'LABEL novalue', 'ENV =x', 'ADD . /']) {
    t.throws(() => parseChanges([bad]), { name: 'UsageError' }, bad);
  }
});
