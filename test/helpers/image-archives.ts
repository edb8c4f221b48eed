// SPDX-License-Identifier: Apache-2.0
// Image archives for the load/save/commit tests, written by skopeo and GNU tar from the umoci-built image.
//
// skopeo writes the oci-archive and the docker-archive (Docker's legacy `docker save` format, as
// skopeo writes it: layers as <diffID hex>.tar, `<id>/layer.tar` symlinks to them). The two
// other `docker save` forms are rearranged from skopeo's output with GNU tar, the way Docker lays
// them out: Docker ≤ 24 keeps each layer as a real `<id>/layer.tar`; Docker 25+ writes an OCI
// layout (uncompressed layers under blobs/sha256/) plus a manifest.json pointing into it.
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/** Runs a tool; a failure names the command and its stderr. */
export async function tool(file: string, args: string[]): Promise<string> {
  try {
    const { stdout } = await execFileAsync(file, args, { maxBuffer: 64 * 1024 * 1024 });
    return stdout;
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr?.trim();
    throw new Error(`\`${file} ${args.join(' ')}\` failed: ${stderr || (error as Error).message}`, { cause: error });
  }
}

/** The archives {@link imageArchives} wrote, all of the same image. */
export interface ImageArchives {
  /** `skopeo copy … oci-archive:FILE:v3`: an OCI layout tar whose ref.name is the bare tag `v3`. */
  ociArchive: string;
  /** `skopeo copy … docker-archive:FILE:example.com/umoci:v3`. */
  dockerArchive: string;
  /** The same, gzip-compressed (`docker save | gzip`). */
  dockerArchiveGz: string;
  /** Docker ≤ 24 layout: `<id>/layer.tar` files, named `example.com/legacy:v3`. */
  dockerLegacy: string;
  /** Docker 25+ layout: oci-layout, index.json, manifest.json and blobs/sha256, named `example.com/d25:v3`. */
  docker25: string;
}

/** Writes the archives of `oci:<layout>:v3` into `dir`. */
export async function imageArchives(layout: string, dir: string): Promise<ImageArchives> {
  const at = (name: string) => path.join(dir, name);
  const source = `oci:${layout}:v3`;
  await tool('skopeo', ['copy', '--quiet', source, `oci-archive:${at('oci.tar')}:v3`]);
  await tool('skopeo', ['copy', '--quiet', source, `docker-archive:${at('docker.tar')}:example.com/umoci:v3`]);
  await tool('sh', ['-c', 'gzip -c "$1" > "$2"', 'sh', at('docker.tar'), at('docker.tar.gz')]);

  // Docker ≤ 24: each layer a real <id>/layer.tar, manifest.json pointing at them.
  const legacy = at('legacy');
  await fs.mkdir(legacy);
  await tool('tar', ['-C', legacy, '-xf', at('docker.tar')]);
  const [item] = JSON.parse(await fs.readFile(path.join(legacy, 'manifest.json'), 'utf8')) as Array<{ Config: string; RepoTags: string[]; Layers: string[] }>;
  const layerDirs: string[] = [];
  for (const entry of await fs.readdir(legacy)) {
    const link = path.join(legacy, entry, 'layer.tar');
    const target = await fs.readlink(link).catch(() => undefined);
    if (target === undefined) continue;
    await fs.rm(link);
    await fs.rename(path.join(legacy, entry, target), link);
    layerDirs.push(entry);
    item!.Layers = item!.Layers.map((layer) => (layer === path.basename(target) ? `${entry}/layer.tar` : layer));
  }
  item!.RepoTags = ['example.com/legacy:v3'];
  await fs.writeFile(path.join(legacy, 'manifest.json'), JSON.stringify([item]));
  await tool('tar', ['-C', legacy, '-cf', at('legacy.tar'), ...(await fs.readdir(legacy))]);

  // Docker 25+: an OCI layout with uncompressed layers, and manifest.json into blobs/sha256.
  const d25 = at('d25');
  await tool('skopeo', ['copy', '--quiet', '--dest-decompress', source, `dir:${at('plain-dir')}`]);
  await tool('skopeo', ['copy', '--quiet', '--dest-oci-accept-uncompressed-layers', `dir:${at('plain-dir')}`, `oci:${d25}:v3`]);
  const index = JSON.parse(await fs.readFile(path.join(d25, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string; annotations: Record<string, string> }> };
  const manifest = JSON.parse(await fs.readFile(path.join(d25, 'blobs/sha256', index.manifests[0]!.digest.slice(7)), 'utf8')) as { config: { digest: string }; layers: Array<{ digest: string }> };
  index.manifests[0]!.annotations = { 'io.containerd.image.name': 'example.com/d25:v3', 'org.opencontainers.image.ref.name': 'v3' };
  await fs.writeFile(path.join(d25, 'index.json'), JSON.stringify(index));
  const blob = (digest: string) => `blobs/sha256/${digest.slice(7)}`;
  await fs.writeFile(path.join(d25, 'manifest.json'), JSON.stringify([{ Config: blob(manifest.config.digest), RepoTags: ['example.com/d25:v3'], Layers: manifest.layers.map((l) => blob(l.digest)) }]));
  await tool('tar', ['-C', d25, '-cf', at('d25.tar'), 'manifest.json', 'index.json', 'oci-layout', 'blobs']);

  return { ociArchive: at('oci.tar'), dockerArchive: at('docker.tar'), dockerArchiveGz: at('docker.tar.gz'), dockerLegacy: at('legacy.tar'), docker25: at('d25.tar') };
}

/** Every path under `dir` (files and directories), sorted: to show that a failed operation left nothing behind. */
export async function treeOf(dir: string): Promise<string[]> {
  const entries = await fs.readdir(dir, { recursive: true }).catch(() => [] as string[]);
  return entries.map(String).sort();
}
