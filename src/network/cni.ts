// SPDX-License-Identifier: Apache-2.0
// Runs CNI plugins (bridge, which runs host-local, from containernetworking-plugins) as the CNI spec says:
// the command in the environment, the network configuration on stdin, the result as JSON on stdout.
import { execFile, execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { SandboxError } from '../errors.js';

/** Where distributions install the reference plugins (Debian: /usr/lib/cni). `NSBOX_CNI_PATH` (colon-separated) comes first. */
const defaultPluginDirs = ['/usr/lib/cni', '/opt/cni/bin', '/usr/libexec/cni'];

/** @internal The spec version nsbox writes; containernetworking-plugins 1.0 and later speak it. */
export const CNI_VERSION = '1.0.0';

/** @internal The parts of a CNI ADD result nsbox reads. */
export interface CniResult {
  interfaces?: Array<{ name: string; mac?: string; sandbox?: string }>;
  ips?: Array<{ address: string; gateway?: string; interface?: number }>;
}

function pluginDirs(): string[] {
  const extra = process.env.NSBOX_CNI_PATH?.split(':').filter(Boolean) ?? [];
  return [...extra, ...defaultPluginDirs];
}

/** @internal The CNI_PATH value: the directories that hold the plugins, so bridge can find host-local. */
export function cniPath(): string {
  return pluginDirs().filter((dir) => existsSync(dir)).join(':');
}

/** @internal The absolute path of a CNI plugin. @throws SandboxError ERR_UNSUPPORTED when it is not installed. */
export function findPlugin(type: string): string {
  for (const dir of pluginDirs()) {
    const file = join(dir, type);
    if (existsSync(file)) return file;
  }
  throw new SandboxError(
    'ERR_UNSUPPORTED',
    `The CNI plugin "${type}" was not found in ${pluginDirs().join(', ')}: install the reference plugins (Debian/Ubuntu: apt-get install containernetworking-plugins) or set NSBOX_CNI_PATH`,
  );
}

function pluginEnv(command: string, context: { containerId: string; netns: string; ifname: string }): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
    CNI_COMMAND: command,
    CNI_CONTAINERID: context.containerId,
    CNI_NETNS: context.netns,
    CNI_IFNAME: context.ifname,
    CNI_PATH: cniPath(),
  };
}

function pluginError(command: string, type: string, containerId: string, stdout: string, error: Error): SandboxError {
  let detail = error.message;
  try {
    const reported = JSON.parse(stdout) as { code?: number; msg?: string; details?: string };
    if (reported.msg) detail = `${reported.msg}${reported.details ? `: ${reported.details}` : ''} (CNI error ${reported.code})`;
  } catch {
    // Not the spec's error JSON: keep the exec error.
  }
  return new SandboxError('ERR_NETWORK', `CNI ${type} ${command} for ${containerId} failed: ${detail}`, { cause: error });
}

/**
 * @internal Runs one plugin. ADD resolves with its result; DEL and CHECK with undefined.
 * @throws SandboxError ERR_NETWORK with the plugin's own error message (the spec's `{code, msg, details}`).
 */
export function runCniPlugin(
  command: 'ADD' | 'DEL' | 'CHECK',
  config: Record<string, unknown> & { type: string },
  context: { containerId: string; netns: string; ifname: string },
): Promise<CniResult | undefined> {
  const plugin = findPlugin(config.type);
  return new Promise((resolve, reject) => {
    const child = execFile(plugin, [], { env: pluginEnv(command, context), timeout: 60_000, maxBuffer: 1 << 20 }, (error, stdout) => {
      if (error) return reject(pluginError(command, config.type, context.containerId, stdout, error));
      resolve(command === 'ADD' && stdout.trim() !== '' ? (JSON.parse(stdout) as CniResult) : undefined);
    });
    child.stdin!.end(JSON.stringify({ cniVersion: CNI_VERSION, ...config }));
  });
}

/** @internal A DEL for process-exit handlers. */
export function runCniDelSync(config: Record<string, unknown> & { type: string }, context: { containerId: string; netns: string; ifname: string }): void {
  try {
    execFileSync(findPlugin(config.type), [], { env: pluginEnv('DEL', context), input: JSON.stringify({ cniVersion: CNI_VERSION, ...config }), timeout: 30_000, stdio: ['pipe', 'pipe', 'ignore'] });
  } catch (error) {
    throw pluginError('DEL', config.type, context.containerId, String((error as { stdout?: Buffer }).stdout ?? ''), error as Error);
  }
}
