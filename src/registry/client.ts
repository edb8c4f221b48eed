// SPDX-License-Identifier: Apache-2.0
// A client for one repository of an OCI distribution registry: manifests and blobs over fetch, with the auth handshake.

import { SandboxError } from '../errors.js';
import { sha256 } from '../image/digest.js';
import { indexTypes, manifestTypes, maxJsonBlobBytes } from '../image/manifest.js';
import { basicAuthorization, dockerConfigCredentials, fetchToken, parseChallenge, type RegistryCredentials } from './auth.js';
import { fetchClassified, readBody, registryMessage, schemeFor } from './http.js';
import type { ImageReference } from './reference.js';
import { withRetries } from './retry.js';

/** @internal How a {@link RegistryClient} reaches its registry. */
export interface RegistryClientOptions {
  /** Used when the registry asks for them; default: Docker's config.json for the registry host. */
  credentials?: RegistryCredentials;
  /** Plain http to a host that is not loopback. */
  insecure?: boolean;
  signal?: AbortSignal;
}

/** @internal A manifest or index as the registry sent it. */
export interface FetchedManifest {
  /** The Content-Type the registry gave (parameters dropped), or ''. */
  contentType: string;
  bytes: Buffer;
  /** sha256 of `bytes`, checked against the digest asked for. */
  digest: string;
}

const accept = [...manifestTypes, ...indexTypes].join(', ');

/**
 * @internal Talks to `/v2/<repository>/` of one registry. Requests go out anonymously; a 401
 * answer's challenge is met once per request (Bearer: a token from the realm, sent with Basic
 * credentials if there are some; Basic: the credentials), and the authorization is kept
 * for later requests. Credentials come from the options, else from Docker's config.json.
 */
export class RegistryClient {
  readonly #reference: ImageReference;
  /** `registry/repository`, for messages. */
  readonly #repository: string;
  readonly #base: URL;
  readonly #options: RegistryClientOptions;
  #credentials: Promise<RegistryCredentials | undefined> | undefined;
  #authorization: string | undefined;

  constructor(reference: ImageReference, options: RegistryClientOptions) {
    const host = reference.registry === 'docker.io' ? 'registry-1.docker.io' : reference.registry;
    this.#reference = reference;
    this.#repository = `${reference.registry}/${reference.repository}`;
    this.#base = new URL(`${schemeFor(host, options.insecure ?? false)}//${host}/v2/${reference.repository}/`);
    this.#options = options;
  }

  /**
   * Fetches the manifest (or index) named by a tag or a digest; a digest is verified.
   * @throws SandboxError ERR_IMAGE_NOT_FOUND (unknown repository, tag or digest),
   *   ERR_DIGEST_MISMATCH, ERR_REGISTRY.
   */
  async manifest(tagOrDigest: string): Promise<FetchedManifest> {
    const what = `manifest \`${tagOrDigest}\` of ${this.#repository}`;
    return withRetries(`Fetching ${what}`, this.#options.signal, async () => {
      const response = await this.#get(`manifests/${tagOrDigest}`, { accept });
      const body = await readBody(response, maxJsonBlobBytes, `The ${what}`);
      if (response.status === 404) {
        throw new SandboxError('ERR_IMAGE_NOT_FOUND', `The ${what} is not on the registry (${registryMessage(body) || 'HTTP 404'})`);
      }
      if (!response.ok) throw unexpected(response, body, `the ${what}`);
      const digest = sha256(body);
      const announced = response.headers.get('docker-content-digest');
      if ((tagOrDigest.startsWith('sha256:') && digest !== tagOrDigest) || (announced?.startsWith('sha256:') && announced !== digest)) {
        throw new SandboxError('ERR_DIGEST_MISMATCH', `The ${what} that the registry sent hashes to ${digest}`);
      }
      return { contentType: (response.headers.get('content-type') ?? '').split(';')[0].trim(), bytes: body, digest };
    });
  }

  /**
   * Starts fetching a blob, from byte `offset` on (a Range request) when it is not 0. Returns the
   * response when it is 200, 206 or 416 (the caller checks which), once: no retries here.
   * @throws SandboxError ERR_REGISTRY for any other answer; TransientError for passing failures.
   */
  async blob(digest: string, offset: number): Promise<Response> {
    const response = await this.#get(`blobs/${digest}`, offset > 0 ? { range: `bytes=${offset}-` } : {});
    if (response.status === 200 || response.status === 206 || response.status === 416) return response;
    throw unexpected(response, await readBody(response, maxJsonBlobBytes, 'An error answer').catch(() => Buffer.alloc(0)), `the blob ${this.#repository}@${digest}`);
  }

  async #get(path: string, headers: Record<string, string>): Promise<Response> {
    const url = new URL(path, this.#base);
    const send = () => fetchClassified(url, {
      headers: this.#authorization ? { ...headers, authorization: this.#authorization } : headers,
      signal: this.#options.signal,
    });
    let response = await send();
    if (response.status === 401) {
      const authorization = await this.#authorize(response.headers.get('www-authenticate') ?? '');
      if (authorization) {
        await response.body?.cancel();
        this.#authorization = authorization;
        response = await send();
      }
    }
    if (response.status === 401 || response.status === 403) {
      const body = await readBody(response, maxJsonBlobBytes, 'An error answer').catch(() => Buffer.alloc(0));
      const credentials = await this.#loadCredentials();
      const hint = credentials ? `the registry refused the credentials of \`${credentials.username}\`` : 'no credentials were given (pass `credentials`, or `docker login`)';
      throw new SandboxError('ERR_REGISTRY', `Access to ${this.#repository} denied (${response.status} ${registryMessage(body) || response.statusText}): ${hint}`);
    }
    return response;
  }

  async #authorize(header: string): Promise<string | undefined> {
    const challenge = parseChallenge(header);
    const credentials = await this.#loadCredentials();
    if (challenge?.scheme === 'bearer') {
      const scope = `repository:${this.#reference.repository}:pull`;
      const token = await fetchToken(challenge, { scope, credentials, insecure: this.#options.insecure ?? false, signal: this.#options.signal });
      return `Bearer ${token}`;
    }
    if (challenge?.scheme === 'basic') return credentials && basicAuthorization(credentials);
    throw new SandboxError('ERR_REGISTRY', `${this.#repository}: the registry asks for an unsupported authentication (\`WWW-Authenticate: ${header}\`)`);
  }

  #loadCredentials(): Promise<RegistryCredentials | undefined> {
    this.#credentials ??= this.#options.credentials ? Promise.resolve(this.#options.credentials) : dockerConfigCredentials(this.#reference.registry);
    return this.#credentials;
  }
}

function unexpected(response: Response, body: Buffer, what: string): SandboxError {
  return new SandboxError('ERR_REGISTRY', `The registry answered ${response.status} ${registryMessage(body) || response.statusText} for ${what}`);
}
