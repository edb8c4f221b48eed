// SPDX-License-Identifier: Apache-2.0
// The image store: images pulled from registries, kept as content-addressed blobs with an index of references, unpacked on demand.

import { mkdir } from 'node:fs/promises';
import { join, resolve as resolvePath } from 'node:path';
import { Readable, Writable } from 'node:stream';
import ow, { type BasePredicate } from 'ow';
import { SandboxError } from '../errors.js';
import type { ImageConfig } from '../image/image-config.js';
import { unpackLayers, type ResolvedImage } from '../image/layer-store.js';
import { stateDir } from '../paths.js';
import { formatReference, parseReference } from '../registry/reference.js';
import { blobsDir } from './blob-writer.js';
import { commitImage, type CommitOptions } from './commit.js';
import { loadImages, type LoadOptions } from './load.js';
import { collectGarbage, removeAbandonedTemps, type GcResult } from './gc.js';
import { withLock } from './lock.js';
import { pullImage, type PullOptions } from './pull.js';
import { pushImage, type PushOptions, type PushResult } from './push.js';
import { readReferences, writeReferences, type ImageRecord, type References } from './references.js';
import { saveImages, type SaveItem, type SaveOptions } from './save.js';
import { readStoredImage, type StoredImage } from './stored-image.js';
import { checkArgument } from '../check.js';

/**
 * Options of {@link ImageStore.open}.
 *
 * @example
 * ```ts
 * const store = await ImageStore.open({ root: '/srv/nsbox/images' });
 * ```
 */
export interface ImageStoreOptions {
  /** The store's directory, created if missing; default `<state dir>/store` ($NSBOX_HOME, /var/lib/nsbox for root, else ~/.local/share/nsbox). */
  root?: string;
}

/**
 * Options of {@link ImageStore.resolve}.
 *
 * @example
 * ```ts
 * const image = await store.resolve('127.0.0.1:5000/busybox:1', { rootless: process.getuid?.() !== 0 });
 * ```
 */
export interface ResolveOptions {
  /** Unpack for a sandbox in a user namespace (overlayfs `userxattr`): the form a non-root host process needs. */
  rootless: boolean;
  /** Largest uncompressed layer accepted, in bytes; default 8 GiB. */
  maxLayerBytes?: number;
}

/**
 * What the store knows about one image.
 *
 * @example
 * ```ts
 * const { digest, references, config, layers } = await store.inspect('127.0.0.1:5000/busybox:1');
 * console.log(digest, references, config.cmd, layers.map((l) => l.size));
 * ```
 */
export interface ImageInfo {
  /** Digest of the image manifest (for this platform). */
  digest: string;
  /** The store's references to it, sorted: `name:tag` and `name@digest`. */
  references: string[];
  /** From the image config: `linux`, `amd64`, and the creation time ('' when absent). */
  os: string;
  architecture: string;
  created: string;
  /** Env, Cmd, Entrypoint, WorkingDir, User, ExposedPorts, Labels. */
  config: ImageConfig;
  /** Bottom first: the (compressed) blob's digest and size, and the diffID of its tar. */
  layers: Array<{ digest: string; size: number; diffId: string }>;
  /** Bytes of the manifest, config and layer blobs. */
  size: number;
}

const sha256Digest = /^sha256:[a-f0-9]{64}$/;
const referenceInput = ow.string.nonEmpty;

/**
 * A local store of images pulled from OCI distribution registries (Docker Hub, GHCR, a
 * `docker-registry` on localhost, …). Blobs are kept by digest in `<root>/blobs/sha256/` and
 * never visible before their digest is checked; `<root>/references.json` maps references to
 * image manifests; layers are unpacked once, on first use, into `<root>/layers/` (or
 * `layers-rootless/`). Several processes may share a store: index changes and garbage
 * collection take turns under a lock file, and concurrent pulls of one image write each blob once.
 *
 * @example
 * ```ts
 * import { ImageStore, run } from 'nsbox';
 * const store = await ImageStore.open();
 * await store.pull('127.0.0.1:5000/busybox:1', { onProgress: (p) => console.log(p.digest, p.bytes, p.total) });
 * const { layers, config } = await store.resolve('127.0.0.1:5000/busybox:1', { rootless: false });
 * const result = await run({ image: { layers, config }, command: ['sh', '-c', 'echo hi'] });
 * ```
 */
export class ImageStore {
  /** The store's directory (absolute). */
  readonly root: string;

  private constructor(root: string) {
    this.root = root;
  }

  /**
   * Opens (and creates if needed) a store, removing temp files and directories that crashed
   * processes left in it.
   * @throws SandboxError ERR_INVALID_OPTION for bad options.
   *
   * @example
   * ```ts
   * const store = await ImageStore.open({ root: '/tmp/images' });
   * ```
   */
  static async open(options: ImageStoreOptions = {}): Promise<ImageStore> {
    check(options, 'options', ow.object.exactShape({ root: ow.optional.string.nonEmpty }));
    const store = new ImageStore(resolvePath(options.root ?? join(stateDir(), 'store')));
    await mkdir(blobsDir(store.root), { recursive: true });
    await removeAbandonedTemps(store.root);
    return store;
  }

  /**
   * Pulls an image (`host[:port]/repo[:tag][@digest]`; Docker Hub when there is no host, tag
   * `latest` by default) into the store and returns what {@link inspect} would. Blobs already
   * in the store are not downloaded again; every blob is checked against its digest before it
   * becomes visible. Up to 3 layers download at once; broken transfers are retried, resumed
   * with a Range request where the registry supports it.
   *
   * @throws SandboxError naming the reference: ERR_IMAGE_NOT_FOUND (unknown repository, tag or
   *   platform), ERR_REGISTRY (unreachable, access denied, unexpected answers), ERR_DIGEST_MISMATCH,
   *   ERR_UNSUPPORTED (schema 1, unknown media types), ERR_CANCELED, ERR_INVALID_OPTION.
   *
   * @example
   * ```ts
   * const image = await store.pull('docker.io/library/busybox:1.36', { signal: AbortSignal.timeout(120_000) });
   * ```
   */
  async pull(reference: string, options: PullOptions = {}): Promise<ImageInfo> {
    check(reference, 'reference', referenceInput);
    check(options, 'options', ow.object.exactShape({
      signal: ow.optional.object.instanceOf(AbortSignal),
      onProgress: ow.optional.function,
      platform: ow.optional.string.nonEmpty,
      credentials: ow.optional.object.exactShape({ username: ow.string, password: ow.string }),
      insecure: ow.optional.boolean,
    }));
    const record = await pullImage(this.root, reference, options);
    return this.#info(await readStoredImage(this.root, record), await readReferences(this.root));
  }

  /**
   * Loads images into the store, as `docker load` does, from an OCI image layout directory, a
   * tar of one (`skopeo copy … oci-archive:FILE`, `docker save` of Docker 25+), or a `docker save`
   * archive of any version, gzip-compressed or not; `input` is a path or a stream (stdin). Names
   * come from the input (Docker's `RepoTags`, OCI `org.opencontainers.image.ref.name` and
   * `io.containerd.image.name` annotations) and from {@link LoadOptions.reference}. A tar is read
   * in one pass, never a whole layer in memory; every blob is checked against its digest, and
   * nothing becomes visible unless the whole input is sound. Returns what {@link inspect} would,
   * per image loaded.
   *
   * @throws SandboxError ERR_IMAGE_INVALID (not a layout or archive, malformed JSON, an entry
   *   path that leaves the archive, a missing blob), ERR_DIGEST_MISMATCH, ERR_UNSUPPORTED (zstd
   *   layers), ERR_IMAGE_NOT_FOUND (no such file, no image for the platform), ERR_INVALID_OPTION
   *   (bad options, an image left without a name), ERR_CANCELED.
   *
   * @example
   * ```ts
   * const [image] = await store.load('./busybox.tar');
   * console.log(image.references); // [ 'docker.io/library/busybox:1.36', … ]
   * await store.load(process.stdin, { reference: 'localhost/app:1' });
   * ```
   */
  async load(input: string | Readable, options: LoadOptions = {}): Promise<ImageInfo[]> {
    check(input, 'input', ow.any(ow.string.nonEmpty, ow.object.instanceOf(Readable)));
    check(options, 'options', ow.object.exactShape({
      reference: ow.optional.string.nonEmpty,
      platform: ow.optional.string.nonEmpty,
      signal: ow.optional.object.instanceOf(AbortSignal),
    }));
    const records = await loadImages(this.root, input, options);
    const references = await readReferences(this.root);
    return Promise.all(records.map(async (record) => this.#info(await readStoredImage(this.root, record), references)));
  }

  /**
   * Saves images of the store as an OCI image layout, as `docker save -o FILE` does: a tar
   * (default) to a file or a stream, or a directory (`format: 'oci-dir'`). `index.json` names
   * each image by the references given (a manifest digest: by all its `name:tag` references),
   * in `org.opencontainers.image.ref.name` and `io.containerd.image.name`, so `skopeo`,
   * `umoci`, `docker load` and {@link load} read it back. A file or directory appears only when complete.
   *
   * @throws SandboxError ERR_IMAGE_NOT_FOUND (not in the store), ERR_INVALID_OPTION (a
   *   non-empty directory destination), ERR_DIGEST_MISMATCH (a corrupt blob), ERR_CANCELED.
   *
   * @example
   * ```ts
   * await store.save(['127.0.0.1:5000/busybox:1'], './busybox.tar');
   * await store.save(['localhost/app:1'], './app-oci', { format: 'oci-dir' });
   * ```
   */
  async save(references: string | string[], destination: string | Writable, options: SaveOptions = {}): Promise<void> {
    check(references, 'references', ow.any(referenceInput, ow.array.nonEmpty.ofType(referenceInput)));
    check(destination, 'destination', ow.any(ow.string.nonEmpty, ow.object.instanceOf(Writable)));
    check(options, 'options', ow.object.exactShape({
      format: ow.optional.string.oneOf(['oci-archive', 'oci-dir']),
      signal: ow.optional.object.instanceOf(AbortSignal),
    }));
    const index = await readReferences(this.root);
    const items = new Map<string, SaveItem>();
    for (const input of typeof references === 'string' ? [references] : references) {
      const { record, keys } = find(index, input);
      const names = sha256Digest.test(input) ? namesOf(index, record.digest) : keys;
      const item = items.get(record.digest) ?? { record, names: [] };
      for (const name of names) if (!name.includes('@') && !item.names.includes(name)) item.names.push(name);
      items.set(record.digest, item);
    }
    await saveImages(this.root, [...items.values()], typeof destination === 'string' ? resolvePath(destination) : destination, options);
  }

  /**
   * Makes a new image from a finished sandbox, as `docker commit` does: the writable layer it
   * kept in `upperDir` (see the run option `upperDir`) becomes a new gzip layer on top of the
   * layers of `from`, deletions as OCI whiteouts, with modes, owners, mtimes, links and xattrs.
   * The new config is `from`'s with the layer, a history entry and `config` changes. The image
   * is recorded as `reference` and returned as {@link inspect} describes it.
   *
   * @throws SandboxError ERR_IMAGE_NOT_FOUND (`from` is not in the store), ERR_INVALID_OPTION
   *   (no `upper/` in `upperDir`, a bad reference), ERR_UNSUPPORTED (a file name starting with
   *   `.wh.`, an overlay redirect or metacopy), ERR_PERMISSION (unreadable files).
   *
   * @example
   * ```ts
   * await run({ image: '127.0.0.1:5000/busybox:1', upperDir: '/tmp/box', command: ['sh', '-c', 'echo hi > /greeting; rm /etc/motd'] });
   * const image = await store.commit({ from: '127.0.0.1:5000/busybox:1', upperDir: '/tmp/box', reference: 'localhost/greeter:1', config: { cmd: ['cat', '/greeting'] } });
   * await run({ image: 'localhost/greeter:1' });
   * ```
   */
  async commit(options: CommitOptions): Promise<ImageInfo> {
    check(options, 'options', ow.object.exactShape({
      from: referenceInput,
      upperDir: ow.string.nonEmpty,
      reference: referenceInput,
      config: ow.optional.object.exactShape({
        cmd: ow.optional.array.ofType(ow.string),
        entrypoint: ow.optional.array.ofType(ow.string),
        env: ow.optional.array.ofType(ow.string.matches(/^[^=]+=/)),
        workingDir: ow.optional.string,
        user: ow.optional.string,
        labels: ow.optional.object.valuesOfType(ow.string),
      }),
      message: ow.optional.string,
      author: ow.optional.string,
    }));
    const parent = find(await readReferences(this.root), options.from).record;
    const record = await commitImage(this.root, parent, { ...options, upperDir: resolvePath(options.upperDir) });
    return this.#info(await readStoredImage(this.root, record), await readReferences(this.root));
  }

  /**
   * Every image in the store, one entry per image manifest, sorted by first reference.
   *
   * @example
   * ```ts
   * for (const image of await store.list()) console.log(image.references.join(' '), image.size);
   * ```
   */
  async list(): Promise<ImageInfo[]> {
    const references = await readReferences(this.root);
    const records = new Map([...references.values()].map((record) => [record.digest, record]));
    const images = await Promise.all([...records.values()].map(async (record) => this.#info(await readStoredImage(this.root, record), references)));
    return images.sort((a, b) => (a.references[0] < b.references[0] ? -1 : 1));
  }

  /**
   * Describes an image of the store, named by a reference as it was pulled or by its manifest digest.
   * @throws SandboxError ERR_IMAGE_NOT_FOUND when the store does not have it.
   *
   * @example
   * ```ts
   * const { config } = await store.inspect('127.0.0.1:5000/busybox:1');
   * console.log(config.env, config.cmd);
   * ```
   */
  async inspect(reference: string): Promise<ImageInfo> {
    check(reference, 'reference', referenceInput);
    const references = await readReferences(this.root);
    return this.#info(await readStoredImage(this.root, find(references, reference).record), references);
  }

  /**
   * Removes a reference. When the image then has no `name:tag` reference left, its
   * `name@digest` references go too; a manifest digest removes every reference to that image.
   * Blobs and layers stay until {@link gc}. Returns the references removed.
   * @throws SandboxError ERR_IMAGE_NOT_FOUND when the store does not have it.
   *
   * @example
   * ```ts
   * await store.remove('127.0.0.1:5000/busybox:1');
   * await store.gc();
   * ```
   */
  async remove(reference: string): Promise<string[]> {
    check(reference, 'reference', referenceInput);
    return withLock(this.root, undefined, async () => {
      const references = await readReferences(this.root);
      const { record, keys } = find(references, reference);
      for (const key of keys) references.delete(key);
      const rest = namesOf(references, record.digest);
      if (!rest.some((name) => !name.includes('@'))) {
        for (const key of rest) references.delete(key);
        keys.push(...rest);
      }
      await writeReferences(this.root, references);
      return keys.sort();
    });
  }

  /**
   * Removes blobs and unpacked layers that no referenced image (and no pull in progress) needs.
   * Layers of a removed image that a running sandbox still uses are removed too.
   *
   * @example
   * ```ts
   * const { blobs, layers } = await store.gc();
   * ```
   */
  async gc(): Promise<GcResult> {
    return withLock(this.root, undefined, () => collectGarbage(this.root));
  }

  /**
   * The layer directories (bottom first) and config of an image of the store, unpacking layers
   * that are not unpacked yet: `{ layers, config }` is a layer stack `run()` and `spawn()` accept as `image`.
   * @throws SandboxError ERR_IMAGE_NOT_FOUND (not in the store: pull it first), ERR_DIGEST_MISMATCH,
   *   ERR_IMAGE_INVALID.
   *
   * @example
   * ```ts
   * const { layers, config, digest } = await store.resolve('127.0.0.1:5000/busybox:1', { rootless: false });
   * await run({ image: { layers, config, name: digest }, command: ['sh', '-c', 'echo hi'] });
   * ```
   */
  async resolve(reference: string, options: ResolveOptions): Promise<ResolvedImage> {
    check(reference, 'reference', referenceInput);
    check(options, 'options', ow.object.exactShape({ rootless: ow.boolean, maxLayerBytes: ow.optional.number.integer.positive }));
    const image = await readStoredImage(this.root, find(await readReferences(this.root), reference).record);
    const layers = await unpackLayers(this.root, image.layers, { cacheRoot: this.root, rootless: options.rootless, maxLayerBytes: options.maxLayerBytes });
    return { layers, config: image.config, digest: image.record.digest };
  }

  /**
   * Pushes an image of the store to a registry: the reference it is known by, or `options.as`
   * (then recorded as a reference too, like `docker tag` + `docker push`). Blobs the repository
   * has are not sent; blobs of an image the store knows from another repository of the same
   * registry are mounted from there; the manifest goes last, byte for byte as stored, so the
   * image keeps its digest. Auth as for {@link pull}, asking for push access.
   *
   * @throws SandboxError naming the destination: ERR_IMAGE_NOT_FOUND (not in the store),
   *   ERR_REGISTRY (unreachable, access denied, unexpected answers), ERR_DIGEST_MISMATCH
   *   (a corrupt blob in the store), ERR_CANCELED, ERR_INVALID_OPTION.
   *
   * @example
   * ```ts
   * await store.pull('127.0.0.1:5000/busybox:1');
   * const { digest, uploaded } = await store.push('127.0.0.1:5000/busybox:1', { as: 'registry.example.com/tools/busybox:1' });
   * ```
   */
  async push(reference: string, options: PushOptions = {}): Promise<PushResult> {
    check(reference, 'reference', referenceInput);
    check(options, 'options', ow.object.exactShape({
      as: ow.optional.string.nonEmpty,
      signal: ow.optional.object.instanceOf(AbortSignal),
      onProgress: ow.optional.function,
      credentials: ow.optional.object.exactShape({ username: ow.string, password: ow.string }),
      insecure: ow.optional.boolean,
      chunkSize: ow.optional.number.integer.positive,
    }));
    const destination = options.as ?? reference;
    if (sha256Digest.test(destination)) {
      throw new SandboxError('ERR_INVALID_OPTION', `Cannot push ${destination}: a digest names no registry; say where with \`as\``);
    }
    parseReference(destination);
    const references = await readReferences(this.root);
    const { record } = find(references, reference);
    return pushImage(this.root, record, destination, namesOf(references, record.digest), options);
  }

  #info(image: StoredImage, references: References): ImageInfo {
    const { record, manifest, layers } = image;
    return {
      digest: record.digest,
      references: namesOf(references, record.digest).sort(),
      os: image.os,
      architecture: image.architecture,
      created: image.created,
      config: image.config,
      layers: layers.map(({ digest, size, diffId }) => ({ digest, size, diffId })),
      size: record.size + manifest.config.size + layers.reduce((sum, layer) => sum + layer.size, 0),
    };
  }
}

/**
 * The image a reference (as pulled) or a manifest digest names, and the index keys that matched.
 * @throws SandboxError ERR_IMAGE_NOT_FOUND.
 */
function find(references: References, input: string): { record: ImageRecord; keys: string[] } {
  if (sha256Digest.test(input)) {
    const keys = namesOf(references, input);
    if (keys.length > 0) return { record: references.get(keys[0]) as ImageRecord, keys };
  } else {
    const key = formatReference(parseReference(input));
    const record = references.get(key);
    if (record) return { record, keys: [key] };
  }
  throw new SandboxError('ERR_IMAGE_NOT_FOUND', `Image ${input} is not in the image store (pull it first)`);
}

function namesOf(references: References, digest: string): string[] {
  return [...references].filter(([, record]) => record.digest === digest).map(([name]) => name);
}

function check<T>(value: unknown, label: string, predicate: BasePredicate<T>): void {
  checkArgument('image store argument', value, label, predicate);
}
