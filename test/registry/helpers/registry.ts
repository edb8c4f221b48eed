// SPDX-License-Identifier: Apache-2.0
// Starts a real CNCF distribution registry (docker-registry) on 127.0.0.1 for tests, and pushes OCI layouts into it with skopeo.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { dir } from 'tmp-promise';

const execFileAsync = promisify(execFile);

/** A running registry. */
export interface TestRegistry {
  /** `127.0.0.1:<port>`, the host part of image references. */
  host: string;
  port: number;
  /** Copies tag `tag` of an OCI layout to `<host>/<repository>` (`busybox:1`), keeping every platform of an index. */
  push(layout: string, tag: string, repository: string): Promise<void>;
  /** Stops the registry and removes its storage. */
  stop(): Promise<void>;
}

/** Credentials a registry started with `auth` requires (htpasswd, bcrypt). */
export interface BasicUser {
  username: string;
  password: string;
}

/** A free TCP port on 127.0.0.1 (free when asked: the registry binds it right after). */
export async function freePort(): Promise<number> {
  const server = net.createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  server.close();
  await once(server, 'close');
  return port;
}

/**
 * Starts `docker-registry serve` with filesystem storage in a temp dir, listening on
 * 127.0.0.1, with htpasswd basic auth when `auth` is given (the file is made with `htpasswd -B`,
 * Debian package apache2-utils). Resolves once it answers `GET /v2/`.
 */
export async function startRegistry(auth?: BasicUser): Promise<TestRegistry> {
  const tmp = await dir({ prefix: 'nsbox-registry-', unsafeCleanup: true });
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const lines = [
    'version: 0.1',
    'log:',
    '  level: error',
    '  accesslog:',
    '    disabled: true',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${path.join(tmp.path, 'data')}`,
    'http:',
    `  addr: ${host}`,
    '  secret: nsbox-test-secret',
  ];
  if (auth) {
    const htpasswd = path.join(tmp.path, 'htpasswd');
    await execFileAsync('htpasswd', ['-Bbc', htpasswd, auth.username, auth.password]);
    lines.push('auth:', '  htpasswd:', '    realm: nsbox-test', `    path: ${htpasswd}`);
  }
  const config = path.join(tmp.path, 'config.yml');
  await fs.writeFile(config, `${lines.join('\n')}\n`);
  const child = spawn('docker-registry', ['serve', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (chunk) => (stderr += chunk));
  try {
    await waitUntilListening(host, child, () => stderr);
  } catch (error) {
    child.kill('SIGKILL');
    await tmp.cleanup();
    throw error;
  }
  const creds = auth ? ['--dest-creds', `${auth.username}:${auth.password}`] : [];
  return {
    host,
    port,
    async push(layout, tag, repository) {
      await execFileAsync('skopeo', ['copy', '--quiet', '--all', '--dest-tls-verify=false', ...creds, `oci:${layout}:${tag}`, `docker://${host}/${repository}`]);
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await once(child, 'exit');
      }
      await tmp.cleanup();
    },
  };
}

async function waitUntilListening(host: string, child: ChildProcess, stderr: () => string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`docker-registry exited with ${child.exitCode}: ${stderr()}`);
    try {
      await fetch(`http://${host}/v2/`);
      return;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  throw new Error(`docker-registry did not listen on ${host} within 15 s: ${stderr()}`);
}
