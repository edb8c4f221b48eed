// SPDX-License-Identifier: Apache-2.0
// The systems the suite compares: nsbox variants, child_process.spawn, bwrap, crun, runc, docker.
// Each starts the same workload from the same busybox rootfs; a peer that cannot run here is
// kept with the reason it is missing, never dropped.
import { spawn as nodeSpawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { run, spawn, type SandboxOptions } from '../../src/index.js';
import { detectCgroups } from '../../src/cgroup/detect.js';
import { which } from './host.js';

/** What a timed run starts: `/bin/true`, or `/bin/echo hi` for the time to first byte. */
export type Workload = 'true' | 'echo';

const ARGV: Record<Workload, string[]> = { true: ['/bin/true'], echo: ['/bin/echo', 'hi'] };

/** One started run: `firstByte` settles at its first byte of stdout, `done` once it exited 0 (both reject otherwise). */
export interface Started {
  firstByte: Promise<void>;
  done: Promise<void>;
}

export interface System {
  id: string;
  label: string;
  /** How it is run, including what the numbers contain beyond the sandbox itself. */
  note: string;
  /** Why it cannot run on this machine; `start` must not be called then. */
  missing?: string;
  start(workload: Workload): Started;
}

function firstData(stream: NodeJS.ReadableStream): Promise<void> {
  return new Promise((resolve, reject) => {
    stream.once('data', () => resolve());
    stream.once('end', () => reject(new Error('no output')));
  });
}

/** Starts a host program through child_process.spawn (stdout/stderr piped) and reports its first byte and exit. */
export function startProcess(file: string, args: string[]): Started {
  const child = nodeSpawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  const firstByte = firstData(child.stdout);
  firstByte.catch(() => {});
  child.stdout.resume();
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const done = new Promise<void>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(`${file} ${args.join(' ')} exited with ${code ?? signal}: ${stderr.trim()}`));
    });
  });
  return { firstByte, done };
}

/** An OCI bundle (config.json from `<runtime> spec`) whose read-only root is `rootfs` and whose process is `argv`. */
async function ociBundle(dir: string, rootfs: string, runtime: string, argv: string[]): Promise<string> {
  await fs.mkdir(dir);
  await new Promise<void>((resolve, reject) => {
    const child = nodeSpawn(runtime, ['spec'], { cwd: dir, stdio: 'ignore' });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${runtime} spec exited with ${code}`))));
  });
  const file = path.join(dir, 'config.json');
  const config = JSON.parse(await fs.readFile(file, 'utf8'));
  config.process.terminal = false;
  config.process.args = argv;
  config.root = { path: rootfs, readonly: true };
  await fs.writeFile(file, JSON.stringify(config, null, 2));
  return dir;
}

/** Whether a Docker engine answers on DOCKER_HOST (unix sockets only) or /var/run/docker.sock. */
function dockerEngine(): Promise<string | undefined> {
  const host = process.env.DOCKER_HOST;
  const socket = host?.startsWith('unix://') ? host.slice('unix://'.length) : host ? undefined : '/var/run/docker.sock';
  if (!socket) return Promise.resolve(`DOCKER_HOST=${host} is not a unix socket`);
  if (!existsSync(socket)) return Promise.resolve(`no Docker engine (${socket} does not exist)`);
  return new Promise((resolve) => {
    const connection = net.connect(socket, () => {
      connection.end();
      resolve(undefined);
    });
    connection.on('error', (error) => resolve(`no Docker engine (${socket}: ${error.message})`));
  });
}

function runTool(file: string, args: string[], input?: NodeJS.ReadableStream): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = nodeSpawn(file, args, { stdio: [input ? 'pipe' : 'ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    if (input) input.pipe(child.stdin!);
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${file} ${args.join(' ')} exited with ${code}: ${stderr.trim()}`))));
  });
}

const PEER_NOTE = 'spawned from Node with child_process, so it includes Node\'s own spawn cost (row "child_process.spawn")';

/** The nsbox rows: (b) is the full sandbox; (c)–(e) take one piece away each, to show what each costs. */
export function nsboxSystems(rootfs: string): System[] {
  const sandbox = (options: Partial<SandboxOptions>) => (workload: Workload): Started => {
    if (workload === 'true') {
      const done = run({ image: rootfs, command: ARGV.true, ...options }).then(() => {});
      return { firstByte: done, done };
    }
    const child = spawn({ image: rootfs, command: ARGV[workload], ...options });
    const firstByte = firstData(child.stdout);
    firstByte.catch(() => {});
    return { firstByte, done: child.result.then(() => {}) };
  };
  return [
    {
      id: 'nsbox',
      label: '(b) nsbox full sandbox',
      note: 'run() (spawn() for output): all namespaces incl. network, overlay root on the busybox rootfs, cgroup with limits, nsbox-init as pid 1',
      start: sandbox({}),
    },
    { id: 'nsbox-noinit', label: '(c) nsbox init: false', note: 'as (b), the workload is pid 1', start: sandbox({ init: false }) },
    { id: 'nsbox-nocgroup', label: '(d) nsbox init: false, cgroup: false', note: 'namespaces (incl. network) + overlay root only', start: sandbox({ init: false, cgroup: false }) },
    {
      id: 'nsbox-hostnet',
      label: "(e) nsbox init: false, cgroup: false, network: 'host'",
      note: 'as (d) without a network namespace',
      start: sandbox({ init: false, cgroup: false, network: 'host' }),
    },
  ];
}

/**
 * child_process.spawn and the peer sandboxes. `work` is an empty directory for bundles and state
 * that the caller removes afterwards.
 */
export async function peerSystems(rootfs: string, work: string): Promise<System[]> {
  const missingTool = (tool: string) => (which(tool) ? undefined : `${tool} is not installed`);
  let containers = 0;
  const containerId = () => `nsbox-bench-${process.pid}-${containers++}`;
  // crun 1.8 refuses a hybrid machine (v1 controllers next to an empty cgroup2 mount).
  const cgroups = detectCgroups();
  const unified = cgroups.mode === 'hybrid' ? cgroups.v2?.mountPoint : undefined;

  const bundles: Partial<Record<string, Record<Workload, string>>> = {};
  for (const runtime of ['crun', 'runc']) {
    if (!which(runtime)) continue;
    bundles[runtime] = {
      true: await ociBundle(path.join(work, `${runtime}-true`), rootfs, runtime, ARGV.true),
      echo: await ociBundle(path.join(work, `${runtime}-echo`), rootfs, runtime, ARGV.echo),
    };
  }

  const dockerMissing = which('docker') ? await dockerEngine() : 'docker is not installed';
  const dockerImage = `nsbox-bench-busybox:${process.pid}`;
  let dockerReady: Promise<void> | undefined;
  const docker = (workload: Workload): Started => {
    // The image is imported from the same rootfs once, before the first (warm-up) run.
    dockerReady ??= runTool('sh', ['-c', 'tar -C "$0" -c . | docker import - "$1"', rootfs, dockerImage]);
    const done = dockerReady.then(() => startProcess('docker', ['run', '--rm', '--network', 'none', dockerImage, ...ARGV[workload]]).done);
    return { firstByte: done, done };
  };

  return [
    {
      id: 'node-spawn',
      label: '(a) child_process.spawn',
      note: "child_process.spawn of the host's /bin/true (or /bin/echo), no isolation: the floor a Node user knows",
      start: (workload) => startProcess(ARGV[workload][0], ARGV[workload].slice(1)),
    },
    {
      id: 'bwrap',
      label: 'bwrap --unshare-all',
      note: `bwrap --unshare-all --die-with-parent --ro-bind ROOTFS / --proc /proc --dev /dev; no cgroup, no overlay; ${PEER_NOTE}`,
      missing: missingTool('bwrap'),
      start: (workload) => startProcess('bwrap', ['--unshare-all', '--die-with-parent', '--ro-bind', rootfs, '/', '--proc', '/proc', '--dev', '/dev', ...ARGV[workload]]),
    },
    {
      id: 'crun',
      label: 'crun run',
      note: unified
        ? `crun run on an OCI bundle of the same rootfs (read-only root, spec defaults); crun 1.8 refuses hybrid cgroups, so each run is \`unshare -m sh -c 'umount ${unified} && exec crun run …'\`: the unshare + sh + umount is included, as a user of this machine pays it per sandbox; ${PEER_NOTE}`
        : `crun run on an OCI bundle of the same rootfs (read-only root, spec defaults); ${PEER_NOTE}`,
      missing: missingTool('crun'),
      start: (workload) => {
        const args = ['--root', path.join(work, 'crun-state'), 'run', '--bundle', bundles.crun![workload], containerId()];
        return unified ? startProcess('unshare', ['-m', 'sh', '-c', 'umount "$0" && exec crun "$@"', unified, ...args]) : startProcess('crun', args);
      },
    },
    {
      id: 'runc',
      label: 'runc run',
      note: `runc run on the same OCI bundle; ${PEER_NOTE}`,
      missing: missingTool('runc'),
      start: (workload) => startProcess('runc', ['--root', path.join(work, 'runc-state'), 'run', '--bundle', bundles.runc![workload], containerId()]),
    },
    {
      id: 'docker',
      label: 'docker run --rm --network none',
      note: `docker run of an image imported from the same rootfs, through the docker CLI; ${PEER_NOTE}`,
      missing: dockerMissing,
      start: docker,
    },
  ];
}

/** Removes the image the docker row imported, if it did. */
export async function cleanupDocker(systems: System[]): Promise<void> {
  if (systems.some((s) => s.id === 'docker' && !s.missing)) {
    await runTool('docker', ['image', 'rm', '-f', `nsbox-bench-busybox:${process.pid}`]).catch(() => {});
  }
}
