// SPDX-License-Identifier: Apache-2.0
// Registry authentication: credentials (given, or from Docker's config.json), challenges, and the Bearer token flow.

import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { SandboxError } from '../errors.js';
import { fetchClassified, isAllowedUrl, readBody } from './http.js';

/**
 * A user name and password (or access token used as a password) for a registry.
 *
 * @example
 * ```ts
 * await store.pull('ghcr.io/acme/tool:1', { credentials: { username: 'bot', password: process.env.GHCR_TOKEN! } });
 * ```
 */
export interface RegistryCredentials {
  username: string;
  password: string;
}

/** @internal A parsed `WWW-Authenticate` challenge: `Bearer realm="…",service="…",scope="…"`. */
export interface Challenge {
  /** Lowercase: 'bearer', 'basic'. */
  scheme: string;
  params: Record<string, string>;
}

// Docker Hub is stored under any of these keys in config.json.
const dockerHubKeys = ['docker.io', 'index.docker.io', 'registry-1.docker.io'];
const maxTokenResponseBytes = 1024 * 1024;

/**
 * @internal The credentials `docker login` saved for `registry` in `$DOCKER_CONFIG/config.json`
 * (default ~/.docker/config.json): `auths[host].auth`, base64 of `user:password`. Keys may
 * carry a scheme and a path (`https://index.docker.io/v1/`). Credential helpers are not run.
 * @throws SandboxError ERR_REGISTRY when the file exists but cannot be read as such.
 */
export async function dockerConfigCredentials(registry: string): Promise<RegistryCredentials | undefined> {
  const path = join(process.env.DOCKER_CONFIG ?? join(homedir(), '.docker'), 'config.json');
  let auths: Record<string, { auth?: unknown }>;
  try {
    auths = JSON.parse(await readFile(path, 'utf8')).auths ?? {};
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new SandboxError('ERR_REGISTRY', `Cannot read registry credentials from ${path}: ${(error as Error).message}`, { cause: error });
  }
  const wanted = dockerHubKeys.includes(registry) ? dockerHubKeys : [registry];
  for (const [key, entry] of Object.entries(auths)) {
    if (!wanted.includes(key.replace(/^[a-z]+:\/\//, '').split('/')[0]) || typeof entry?.auth !== 'string') continue;
    const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon > 0) return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
  }
  return undefined;
}

/** @internal Parses a `WWW-Authenticate` header; undefined when it has no scheme. */
export function parseChallenge(header: string): Challenge | undefined {
  const match = /^\s*([A-Za-z][A-Za-z0-9_-]*)(?:\s+(.*))?$/s.exec(header);
  if (!match) return undefined;
  const params: Record<string, string> = {};
  for (const [, key, quoted, bare] of (match[2] ?? '').matchAll(/([A-Za-z_][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,"]+))/g)) {
    params[key.toLowerCase()] = quoted !== undefined ? quoted.replace(/\\(.)/g, '$1') : bare;
  }
  return { scheme: match[1].toLowerCase(), params };
}

/** @internal The `Authorization` value for Basic credentials. */
export function basicAuthorization(credentials: RegistryCredentials): string {
  return `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}`;
}

/**
 * @internal Gets a token for a Bearer challenge (the Docker token flow): GET the challenge's
 * realm with its `service` and `scope` (or `scope` given here when the challenge names none),
 * sending Basic credentials when there are some. The realm obeys the same http/https rule as
 * the registry, so credentials never go to a clear-text token server by accident.
 * @throws SandboxError ERR_REGISTRY when the realm is missing or refused, or the server says no.
 */
export async function fetchToken(
  challenge: Challenge,
  options: { scope: string; credentials: RegistryCredentials | undefined; insecure: boolean; signal: AbortSignal | undefined },
): Promise<string> {
  let realm: URL;
  try {
    realm = new URL(challenge.params.realm ?? '');
  } catch (error) {
    throw new SandboxError('ERR_REGISTRY', `The registry's Bearer challenge has no valid realm (${JSON.stringify(challenge.params.realm)})`, { cause: error });
  }
  if (!isAllowedUrl(realm, options.insecure)) {
    throw new SandboxError('ERR_REGISTRY', `The token server ${realm.origin} is not https (plain http is allowed only on loopback or with \`insecure: true\`)`);
  }
  if (challenge.params.service) realm.searchParams.set('service', challenge.params.service);
  realm.searchParams.set('scope', challenge.params.scope ?? options.scope);
  const headers: Record<string, string> = options.credentials ? { authorization: basicAuthorization(options.credentials) } : {};
  const response = await fetchClassified(realm, { headers, signal: options.signal });
  const body = await readBody(response, maxTokenResponseBytes, `The token server's answer`);
  if (response.status === 401 || response.status === 403) {
    throw new SandboxError('ERR_REGISTRY', `Access denied: the token server ${realm.origin} refused ${options.credentials ? 'the credentials' : 'anonymous access'} (${response.status})`);
  }
  let token: unknown;
  try {
    const json = JSON.parse(body.toString('utf8'));
    token = json.token ?? json.access_token;
  } catch {
    // Reported below with the status.
  }
  if (!response.ok || typeof token !== 'string' || token === '') {
    throw new SandboxError('ERR_REGISTRY', `The token server ${realm.origin} gave no token (${response.status} ${response.statusText})`);
  }
  return token;
}
