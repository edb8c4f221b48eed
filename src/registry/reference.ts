// SPDX-License-Identifier: Apache-2.0
// Image references (`host[:port]/repo[:tag][@digest]`): parsing with Docker's defaults, and their canonical form.

import { SandboxError } from '../errors.js';
import { digestHex } from '../image/digest.js';

/**
 * A parsed image reference, with Docker's defaults applied: registry `docker.io`, the
 * `library/` namespace for single-name Docker Hub images, tag `latest` when neither tag nor digest is given.
 *
 * @example
 * ```ts
 * parseReference('busybox');
 * // { registry: 'docker.io', repository: 'library/busybox', tag: 'latest' }
 * ```
 */
export interface ImageReference {
  /** `host[:port]`, e.g. `docker.io`, `127.0.0.1:5000`, `ghcr.io`. */
  registry: string;
  /** The repository path on that registry, e.g. `library/busybox`. */
  repository: string;
  /** The tag; absent when the reference names only a digest. */
  tag?: string;
  /** `sha256:<hex>` when the reference pins a digest (it then wins over any tag). */
  digest?: string;
}

const dockerHub = 'docker.io';
const component = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const tagPattern = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const hostPattern = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$/;

/**
 * Parses an image reference. The first path component is the registry when it has a `.` or
 * a `:`, is `localhost`, or is an IPv6 literal; otherwise the image is on Docker Hub.
 *
 * @throws SandboxError ERR_INVALID_OPTION naming the reference when it is malformed.
 *
 * @example
 * ```ts
 * parseReference('127.0.0.1:5000/tools/busybox:1.36');
 * // { registry: '127.0.0.1:5000', repository: 'tools/busybox', tag: '1.36' }
 * ```
 */
export function parseReference(text: string): ImageReference {
  const bad = (problem: string) => new SandboxError('ERR_INVALID_OPTION', `Image reference \`${text}\` is invalid: ${problem}`);
  let rest = text;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at !== -1) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    try {
      digestHex(digest, `Image reference \`${text}\``);
    } catch {
      throw bad(`\`${digest}\` is not a sha256 digest`);
    }
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!tagPattern.test(tag)) throw bad(`\`${tag}\` is not a valid tag`);
  }
  const parts = rest.split('/');
  const first = parts[0];
  const hasRegistry = parts.length > 1 && (first.includes('.') || first.includes(':') || first === 'localhost' || first.startsWith('['));
  let registry = hasRegistry ? (parts.shift() as string) : dockerHub;
  if (hasRegistry && !hostPattern.test(registry)) throw bad(`\`${registry}\` is not a valid registry host`);
  if (registry === 'index.docker.io' || registry === 'registry-1.docker.io') registry = dockerHub;
  if (parts.length === 0 || !parts.every((part) => component.test(part))) {
    throw bad('the repository must be lowercase path components of letters, digits and separators (. _ __ -)');
  }
  if (registry === dockerHub && parts.length === 1) parts.unshift('library');
  const reference: ImageReference = { registry, repository: parts.join('/') };
  if (tag !== undefined || digest === undefined) reference.tag = tag ?? 'latest';
  if (digest !== undefined) reference.digest = digest;
  return reference;
}

/**
 * The canonical string of a reference: `registry/repository`, then `@digest` if it has one,
 * else `:tag`.
 *
 * @example
 * ```ts
 * formatReference(parseReference('busybox')); // 'docker.io/library/busybox:latest'
 * ```
 */
export function formatReference(reference: ImageReference): string {
  const name = `${reference.registry}/${reference.repository}`;
  return reference.digest ? `${name}@${reference.digest}` : `${name}:${reference.tag}`;
}
