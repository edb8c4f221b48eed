// SPDX-License-Identifier: Apache-2.0
// Commits the writable layer of a finished sandbox as a new image: its upper directory becomes a gzip layer on top of the parent's.

import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { SandboxError } from '../errors.js';
import { Sha256Stream } from '../image/digest.js';
import { isRecord } from '../image/manifest.js';
import { readJsonBlob } from '../image/oci-layout.js';
import { upperToLayer, type UpperToLayerOptions } from '../image/upper-to-layer.js';
import { idMapping } from '../idmap.js';
import { isRoot } from '../paths.js';
import { formatReference, parseReference } from '../registry/reference.js';
import { BlobWriter } from './blob-writer.js';
import { withLock } from './lock.js';
import { readReferences, writeReferences, type ImageRecord } from './references.js';
import { readStoredImage } from './stored-image.js';

/**
 * Changes to the runtime config a commit makes, like `docker commit --change`. Each field
 * given replaces the parent's, except `env` and `labels`, which are merged into the parent's
 * (a `KEY=value` replaces the parent's KEY, as a Dockerfile ENV does).
 *
 * @example
 * ```ts
 * const change: CommitConfig = { cmd: ['/app/serve'], env: ['MODE=prod'], labels: { version: '2' } };
 * ```
 */
export interface CommitConfig {
  cmd?: string[];
  entrypoint?: string[];
  /** `KEY=value` strings. */
  env?: string[];
  workingDir?: string;
  user?: string;
  labels?: Record<string, string>;
}

/**
 * Options of {@link ImageStore.commit}.
 *
 * @example
 * ```ts
 * await run({ image: 'localhost/base:1', upperDir: '/tmp/box1', command: ['sh', '-c', 'echo hi > /greeting'] });
 * await store.commit({ from: 'localhost/base:1', upperDir: '/tmp/box1', reference: 'localhost/app:1', message: 'add greeting' });
 * ```
 */
export interface CommitOptions {
  /** The image the sandbox ran (a reference or manifest digest of the store): the new image's layers start with its. */
  from: string;
  /**
   * The `upperDir` the finished sandbox ran with (it holds `upper/` and `work/`): its `upper/`
   * becomes the new layer. The sandbox must have ended: a layer of a running one would be torn.
   */
  upperDir: string;
  /** `name:tag` of the new image. */
  reference: string;
  /** Changes to the runtime config (Cmd, Entrypoint, Env, WorkingDir, User, Labels). */
  config?: CommitConfig;
  /** The history entry's comment. */
  message?: string;
  /** The image's author (config `author` and the history entry). */
  author?: string;
}

const gzipLayerTypes: Record<string, string> = {
  'application/vnd.docker.distribution.manifest.v2+json': 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  'application/vnd.oci.image.manifest.v1+json': 'application/vnd.oci.image.layer.v1.tar+gzip',
};

/**
 * @internal Commits `options.upperDir`/upper as a new layer on top of the image `parent`, writes the
 * new config (diff_ids and history appended, `config` changes applied, `created` now) and
 * manifest (in the parent's format, Docker schema 2 or OCI), and records `options.reference`
 * and `name@<digest>`. The layer is made in one pass: tar → sha256 (the diffID) → gzip → a
 * blob of the store. Nothing is visible until all three blobs are complete.
 *
 * Owners: a rootless sandbox wrote host ids into the upper directory; they are mapped back to
 * the ids inside it the way nsbox maps this user's sandboxes (the user → 0, its /etc/subuid range
 * → 1…65536), so the layer holds what the sandbox saw.
 * @throws SandboxError ERR_INVALID_OPTION (no upper directory, bad reference), ERR_IMAGE_NOT_FOUND
 *   (parent), ERR_UNSUPPORTED / ERR_PERMISSION (see upperToLayer).
 */
export async function commitImage(root: string, parent: ImageRecord, options: CommitOptions): Promise<ImageRecord> {
  const reference = parseReference(options.reference);
  if (reference.digest) throw new SandboxError('ERR_INVALID_OPTION', `Invalid image store argument: reference \`${options.reference}\` names a digest; a committed image is named by name:tag`);
  const name = formatReference(reference);
  const upper = join(options.upperDir, 'upper');
  if (!(await stat(upper).then((s) => s.isDirectory(), () => false))) {
    throw new SandboxError('ERR_INVALID_OPTION', `Invalid image store argument: ${options.upperDir} has no upper/ directory (pass the upperDir a finished run was given)`);
  }
  const image = await readStoredImage(root, parent);
  const manifest = await readJsonBlob(root, parent, 'manifest');
  const parentConfig = await readJsonBlob(root, image.manifest.config, 'config');
  if (!isRecord(manifest) || !isRecord(parentConfig)) throw new SandboxError('ERR_IMAGE_INVALID', `Image ${parent.digest}: manifest or config is not an object`);

  const writers: BlobWriter[] = [];
  const newWriter = async (blob?: { digest: string; size: number }) => {
    const writer = await BlobWriter.create(root, blob);
    writers.push(writer);
    return writer;
  };
  try {
    const layerWriter = await newWriter();
    let diffId = '';
    const tarHash = new Sha256Stream({ onEnd: (digest) => (diffId = digest) });
    const sink = new Writable({ write: (chunk: Buffer, _encoding, done) => void layerWriter.write(chunk).then(() => done(), done) });
    await pipeline(Readable.from(upperToLayer(upper, ownerMaps()), { objectMode: false }), tarHash, createGzip(), sink);
    const layer = await layerWriter.seal();

    const created = new Date().toISOString();
    const config = newConfig(parentConfig, diffId, created, options);
    const configBytes = Buffer.from(JSON.stringify(config));
    const configWriter = await newWriter();
    await configWriter.write(configBytes);
    const configBlob = await configWriter.seal();

    const manifestType = typeof manifest.mediaType === 'string' ? manifest.mediaType : 'application/vnd.oci.image.manifest.v1+json';
    const layerType = gzipLayerTypes[manifestType] ?? gzipLayerTypes['application/vnd.oci.image.manifest.v1+json'];
    const parentLayers = Array.isArray(manifest.layers) ? manifest.layers : [];
    const newManifest = {
      schemaVersion: 2,
      mediaType: manifestType,
      config: { mediaType: image.manifest.config.mediaType, digest: configBlob.digest, size: configBlob.size },
      layers: [...parentLayers, { mediaType: layerType, digest: layer.digest, size: layer.size }],
    };
    const manifestWriter = await newWriter();
    await manifestWriter.write(Buffer.from(JSON.stringify(newManifest)));
    const record = await manifestWriter.seal();

    await withLock(root, undefined, async () => {
      for (const writer of writers) await writer.publish();
      const references = await readReferences(root);
      references.set(name, record);
      references.set(`${reference.registry}/${reference.repository}@${record.digest}`, record);
      await writeReferences(root, references);
    });
    return record;
  } finally {
    await Promise.all(writers.map((writer) => writer.discard()));
  }
}

/** The parent's config blob with the new layer, history entry and changes; unknown fields are kept. */
function newConfig(parent: Record<string, unknown>, diffId: string, created: string, options: CommitOptions): Record<string, unknown> {
  const config = structuredClone(parent);
  const runtime: Record<string, unknown> = isRecord(config.config) ? config.config : {};
  const change = options.config ?? {};
  if (change.cmd) runtime.Cmd = change.cmd;
  if (change.entrypoint) runtime.Entrypoint = change.entrypoint;
  if (change.workingDir !== undefined) runtime.WorkingDir = change.workingDir;
  if (change.user !== undefined) runtime.User = change.user;
  if (change.env) runtime.Env = mergeEnv(Array.isArray(runtime.Env) ? (runtime.Env as string[]) : [], change.env);
  if (change.labels) runtime.Labels = { ...(isRecord(runtime.Labels) ? runtime.Labels : {}), ...change.labels };
  config.config = runtime;
  config.created = created;
  if (options.author !== undefined) config.author = options.author;
  const rootfs = isRecord(config.rootfs) ? config.rootfs : { type: 'layers', diff_ids: [] };
  rootfs.diff_ids = [...(Array.isArray(rootfs.diff_ids) ? rootfs.diff_ids : []), diffId];
  config.rootfs = rootfs;
  const entry = {
    created,
    created_by: 'nsbox commit',
    ...(options.author !== undefined && { author: options.author }),
    ...(options.message !== undefined && { comment: options.message }),
  };
  config.history = [...(Array.isArray(config.history) ? config.history : []), entry];
  return config;
}

// KEY=value entries replace the parent's KEY in place; new keys are appended.
function mergeEnv(parent: string[], changes: string[]): string[] {
  const key = (entry: string) => entry.slice(0, entry.indexOf('=') === -1 ? entry.length : entry.indexOf('='));
  const merged = [...parent];
  for (const change of changes) {
    const at = merged.findIndex((entry) => key(entry) === key(change));
    if (at === -1) merged.push(change);
    else merged[at] = change;
  }
  return merged;
}

/**
 * Host → sandbox id maps for an upper directory a rootless sandbox of this user wrote: the
 * inverse of the maps nsbox gives such a sandbox. Root's sandboxes use host ids (or the
 * identity map), so nothing is mapped.
 */
function ownerMaps(): UpperToLayerOptions {
  if (isRoot()) return {};
  const mapping = idMapping(false, 0, 0);
  return { uid: inverse(mapping.uidMap), gid: inverse(mapping.gidMap) };
}

// An id map ("inside outside count" lines) read backwards; an id outside every range is the overflow id.
function inverse(map: string): (hostId: number) => number {
  const ranges = map.trim().split('\n').map((line) => line.trim().split(/\s+/).map(Number));
  return (hostId) => {
    for (const [inside, outside, count] of ranges) {
      if (hostId >= outside && hostId < outside + count) return inside + (hostId - outside);
    }
    return 65534;
  };
}
