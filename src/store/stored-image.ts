// SPDX-License-Identifier: Apache-2.0
// Reads an image of the store back from its blobs: manifest, config and layers, each blob digest-checked.

import type { ImageConfig } from '../image/image-config.js';
import { isRecord, parseConfigBlob, parseManifest, type LayerRef, type ParsedManifest } from '../image/manifest.js';
import { readJsonBlob } from '../image/oci-layout.js';
import type { ImageRecord } from './references.js';

/** @internal An image as the store holds it. */
export interface StoredImage {
  /** The manifest blob. */
  record: ImageRecord;
  manifest: ParsedManifest;
  config: ImageConfig;
  /** Bottom first. */
  layers: LayerRef[];
  /** From the config blob; '' when absent. */
  os: string;
  architecture: string;
  created: string;
}

/**
 * @internal Reads the image whose manifest is `record`.
 * @throws SandboxError ERR_IMAGE_NOT_FOUND (a blob is missing), ERR_DIGEST_MISMATCH, ERR_IMAGE_INVALID.
 */
export async function readStoredImage(root: string, record: ImageRecord): Promise<StoredImage> {
  const manifest = parseManifest(await readJsonBlob(root, record, 'manifest'), `Manifest ${record.digest}`);
  const configBlob = await readJsonBlob(root, manifest.config, 'config');
  const { config, layers } = parseConfigBlob(configBlob, manifest);
  const text = (key: string) => (isRecord(configBlob) && typeof configBlob[key] === 'string' ? (configBlob[key] as string) : '');
  return { record, manifest, config, layers, os: text('os'), architecture: text('architecture'), created: text('created') };
}
