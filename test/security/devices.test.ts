// SPDX-License-Identifier: Apache-2.0
// Escape attempts through devices: host disks and character devices by mknod or shipped in an image, the host terminal, devpts.
import test, { type ExecutionContext } from 'ava';
import { execFileSync, spawn as hostSpawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { probeBinary } from '../helpers/probe-image.js';
import { rawTar, sha256Of, type RawEntry } from '../helpers/raw-tar.js';
import { assertNoEscape, attack, hostKernelLog, SECCOMP, verdictOf, type Attack } from './attack.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

/** A loop device on the host over a file that starts with a secret: a disk whose bytes we know. */
function hostDisk(t: ExecutionContext): { minor: number; secret: string } | undefined {
  const dir = mkdtempSync(join(tmpdir(), 'nsbox-disk-'));
  const secret = `host-disk-secret-${randomBytes(8).toString('hex')}`;
  const file = join(dir, 'disk.img');
  writeFileSync(file, Buffer.concat([Buffer.from(secret), Buffer.alloc(64 * 1024 - secret.length)]));
  let device: string;
  try {
    device = execFileSync('losetup', ['--find', '--show', '--read-only', file], { encoding: 'utf8' }).trim();
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    t.log(`no loop device on this host (${String(error)})`);
    return undefined;
  }
  t.teardown(() => {
    execFileSync('losetup', ['--detach', device]);
    rmSync(dir, { recursive: true, force: true });
  });
  return { minor: Number(/\d+$/.exec(device)![0]), secret };
}

/** The node could not be made (mknod refused) or, once made, not opened. */
function assertDeviceRefused(t: ExecutionContext, attempt: Attack, path: string, node: string): void {
  assertNoEscape(t, attempt);
  const made = verdictOf(attempt, `mknod ${path} ${node}`);
  t.truthy(made, attempt.output);
  if (made!.kind === 'blocked') {
    t.true(SECCOMP.includes(made!.errno as (typeof SECCOMP)[number]), made!.line);
  } else {
    const opened = verdictOf(attempt, `open ${path}`);
    t.is(opened?.kind, 'blocked', attempt.output);
    t.true(['EACCES', 'EPERM', 'ENXIO', 'ENODEV'].includes(opened!.errno!), opened!.line);
  }
}

test('mknod of a host disk (a loop device holding a secret) in /, /dev or /tmp cannot read it', async (t) => {
  const disk = hostDisk(t);
  if (!disk) return t.pass();
  for (const path of ['/disk', '/dev/disk', '/tmp/disk']) {
    const attempt = await attack(['mknod-open', path, 'b', '7', String(disk.minor), 'r']);
    assertDeviceRefused(t, attempt, path, `b 7:${disk.minor}`);
    t.notRegex(attempt.result.stdout, new RegExp(disk.secret));
  }
});

test('mknod of host character devices (kmsg, kvm, hwrng, fuse, loop-control, a virtual console) cannot open them', async (t) => {
  const marker = `nsbox-kmsg-${randomBytes(6).toString('hex')}`;
  const devices: Array<[string, number, number, 'r' | 'w']> = [
    ['/dev/kmsg-node', 1, 11, 'w'],
    ['/kvm-node', 10, 232, 'r'],
    ['/hwrng-node', 10, 183, 'r'],
    ['/fuse-node', 10, 229, 'r'],
    ['/loop-control-node', 10, 237, 'r'],
    ['/dev/tty1-node', 4, 1, 'r'],
  ];
  const attempts = await Promise.all(devices.map(([path, major, minor, mode]) => attack(['mknod-open', path, 'c', String(major), String(minor), mode, `${marker}\n`])));
  attempts.forEach((attempt, i) => {
    const [path, major, minor] = devices[i]!;
    assertDeviceRefused(t, attempt, path, `c ${major}:${minor}`);
  });
  t.false(hostKernelLog().includes(marker), 'the workload wrote into the host kernel log');
});

/** An OCI image layout whose single layer holds the probe and the given device nodes (as a registry could serve it). */
async function imageWithDevices(t: ExecutionContext, nodes: RawEntry[]): Promise<string> {
  const layout = mkdtempSync(join(tmpdir(), 'nsbox-devimage-'));
  t.teardown(() => rmSync(layout, { recursive: true, force: true }));
  const dir = (path: string, mode = 0o755): RawEntry => ({ path, type: 'Directory', mode });
  const layer = rawTar([
    dir('usr/'), dir('usr/bin/'), dir('etc/'), dir('proc/'), dir('dev/'), dir('sys/'), dir('tmp/', 0o1777),
    { path: 'usr/bin/probe', mode: 0o755, body: readFileSync(await probeBinary()) },
    { path: 'etc/passwd', body: 'root:x:0:0:root:/root:/bin/sh\n' },
    ...nodes,
  ]);
  const blob = (content: Buffer) => {
    const digest = sha256Of(content);
    writeFileSync(join(layout, 'blobs', 'sha256', digest.slice(7)), content);
    return { digest, size: content.length };
  };
  execFileSync('mkdir', ['-p', join(layout, 'blobs', 'sha256')]);
  const layerBlob = blob(layer);
  const config = blob(Buffer.from(JSON.stringify({
    architecture: 'amd64', os: 'linux',
    config: { Env: ['PATH=/usr/bin:/bin'], Cmd: ['probe', 'pid'] },
    rootfs: { type: 'layers', diff_ids: [layerBlob.digest] },
  })));
  const manifest = blob(Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...layerBlob }],
  })));
  writeFileSync(join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  writeFileSync(join(layout, 'index.json'), JSON.stringify({
    schemaVersion: 2,
    manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...manifest, annotations: { 'org.opencontainers.image.ref.name': 'latest' } }],
  }));
  return layout;
}

test.serial('device nodes shipped in an image cannot open the host’s disk or kernel log', async (t) => {
  const disk = hostDisk(t);
  const marker = `nsbox-image-kmsg-${randomBytes(6).toString('hex')}`;
  const node = (path: string, type: 'CharacterDevice' | 'BlockDevice', devmaj: number, devmin: number): RawEntry => ({ path, type, mode: 0o666, devmaj, devmin });
  const layout = await imageWithDevices(t, [
    node('kmsg', 'CharacterDevice', 1, 11),
    ...(disk ? [node('disk', 'BlockDevice', 7, disk.minor)] : []),
  ]);
  // The unpacked layer (device nodes included) goes to a state directory of this test alone.
  const state = mkdtempSync(join(tmpdir(), 'nsbox-devstate-'));
  const previous = process.env.NSBOX_HOME;
  process.env.NSBOX_HOME = state;
  t.teardown(() => {
    if (previous === undefined) delete process.env.NSBOX_HOME;
    else process.env.NSBOX_HOME = previous;
    rmSync(state, { recursive: true, force: true });
  });
  const write = await attack(['write-paths', `${marker}\n`, '/kmsg'], { image: layout });
  assertNoEscape(t, write);
  t.is(verdictOf(write, 'write /kmsg')?.kind, 'blocked', write.output);
  t.false(hostKernelLog().includes(marker), 'the image’s /kmsg node wrote into the host kernel log');
  if (disk) {
    const read = await attack(['read-paths', '/disk'], { image: layout });
    assertNoEscape(t, read);
    t.notRegex(read.result.stdout, new RegExp(disk.secret), 'the image’s /disk node read the host’s disk');
  }
});

test('the workload cannot reach the host’s terminal: no /dev/tty, no TIOCSTI into the shell that runs nsbox', async (t) => {
  if (!existsSync('/usr/bin/script')) {
    t.log('util-linux `script` is missing: no pseudo-terminal to run under');
    return t.pass();
  }
  // nsbox runs in a process whose controlling terminal is a pty (as `nsbox run` in a shell);
  // after it exits, the shell reads one line from that terminal: a line the sandbox typed there.
  const marker = `nsbox-tty-${randomBytes(6).toString('hex')}`;
  const fixture = fileURLToPath(new URL('fixtures/tty-host.ts', import.meta.url));
  const script = `${process.execPath} --import tsx ${fixture} ${marker}; printf 'SHELL-READ:'; timeout 3 head -n 1; echo`;
  const child = hostSpawn('script', ['--quiet', '--return', '--command', script, '/dev/null'], { cwd: repoRoot, stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, SHELL: '/bin/sh' } });
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  // stdin stays open: at EOF `script` would send the terminal an end-of-file of its own.
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  child.stdin.destroy();
  t.is(code, 0, output);
  const sandbox = /SANDBOX:(.*)/.exec(output);
  t.truthy(sandbox, output);
  const reported = JSON.parse(sandbox![1]!.trim()) as { exitCode: number; stdout: string };
  t.notRegex(reported.stdout, /ESCAPED/, reported.stdout);
  t.regex(reported.stdout, /blocked open \/dev\/tty errno=ENXIO/, reported.stdout);
  const shellRead = /SHELL-READ:(.*)/.exec(output)?.[1] ?? '';
  t.false(shellRead.includes(marker), `the host shell read a line the sandbox typed: ${shellRead}`);
});

test('devpts is private: the host’s ptys are not there and new ones are the sandbox’s own', async (t) => {
  // A host pty that exists for the duration of the attempt.
  const holder = hostSpawn('script', ['--quiet', '--command', 'sleep 20', '/dev/null'], { stdio: ['pipe', 'ignore', 'ignore'] });
  t.teardown(() => {
    holder.kill('SIGKILL');
  });
  let hostPtys: string[] = [];
  for (let i = 0; i < 50 && hostPtys.length === 0; i++) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    hostPtys = readdirSync('/dev/pts').filter((n) => /^\d+$/.test(n));
  }
  t.true(hostPtys.length > 0, 'the host has a pty');
  const target = hostPtys.map(Number).sort((a, b) => b - a)[0]!;
  const attempt = await attack(['ptmx', String(target)]);
  assertNoEscape(t, attempt);
  const open = verdictOf(attempt, 'open host pty');
  t.is(open?.errno, 'ENOENT', attempt.output);
  // Inside: only ptmx and the one pty the probe opened afterwards.
  const listing = attempt.result.stdout.split('\n').filter((l) => /^(\d+|ptmx)$/.test(l));
  t.deepEqual(listing, ['0', 'ptmx'], attempt.output);
});
