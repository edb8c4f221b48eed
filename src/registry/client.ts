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
  /** Ask token servers for push access too (when their challenge names no scope). */
  push?: boolean;
}

/** @internal A manifest or index as the registry sent it. */
export interface FetchedManifest {
  /** The Content-Type the registry gave (parameters dropped), or ''. */
  contentType: string;
  bytes: Buffer;
  /** sha256 of `bytes`, checked against the digest asked for. */
  digest: string;
}

/** @internal A request body: bytes, or a stream of them. */
export type RequestBody = Buffer | ReadableStream<Uint8Array>;

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

  /**
   * Whether the repository has a blob (HEAD).
   * @throws SandboxError ERR_REGISTRY for an answer other than 200 or 404; TransientError for passing failures.
   */
  async hasBlob(digest: string): Promise<boolean> {
    const response = await this.request('HEAD', `blobs/${digest}`, {});
    if (response.status === 200) return true;
    if (response.status === 404) return false;
    throw unexpected(response, Buffer.alloc(0), `the blob ${this.#repository}@${digest}`);
  }

  /**
   * Sends a request to `path` (relative to `/v2/<repository>/`, or an absolute URL the registry
   * gave, such as an upload location) and meets a 401 challenge once, as for pulls. `body` is a
   * factory so the request can be sent again after the challenge. The authorization goes only to
   * the registry's own origin: an upload location elsewhere (a storage service) gets none.
   * @throws SandboxError ERR_REGISTRY when access is denied (401/403); TransientError for passing failures.
   */
  async request(method: string, path: string | URL, options: { headers?: Record<string, string>; body?: () => RequestBody }): Promise<Response> {
    return this.#send(method, new URL(path, this.#base), options.headers ?? {}, options.body);
  }

  /** The registry's repository URL, to resolve the (possibly relative) locations it answers with. */
  get base(): URL {
    return this.#base;
  }

  async #get(path: string, headers: Record<string, string>): Promise<Response> {
    return this.#send('GET', new URL(path, this.#base), headers, undefined);
  }

  async #send(method: string, url: URL, headers: Record<string, string>, body: (() => RequestBody) | undefined): Promise<Response> {
    const sameOrigin = url.origin === this.#base.origin;
    const send = () => {
      const init: RequestInit & { duplex?: 'half' } = {
        method,
        headers: this.#authorization && sameOrigin ? { ...headers, authorization: this.#authorization } : headers,
        signal: this.#options.signal,
      };
      if (body) {
        init.body = body() as NonNullable<RequestInit['body']>;
        // fetch needs this to send a stream as a request body.
        if (init.body instanceof ReadableStream) init.duplex = 'half';
      }
      return fetchClassified(url, init);
    };
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
      const scope = `repository:${this.#reference.repository}:${this.#options.push ? 'pull,push' : 'pull'}`;
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
