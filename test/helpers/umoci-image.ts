// SPDX-License-Identifier: Apache-2.0
// Builds, once per test process, a three-layer busybox OCI image with umoci (and variants with skopeo) for the image tests.
//
// Layers of tag `v3` (tags `v1` and `v2` name the first one and two):
//   1 (umoci repack)     bin/busybox, bin/sh -> busybox, etc/hostname ("base") + hard link
//                        etc/hostname.hard, etc/motd, etc/secret (0640, 1000:1001 as root,
//                        mtime 2001-02-03), tmp (1777), data/old.txt, data/sub/x
//   2 (umoci repack)     deletes etc/motd and data/sub (umoci writes .wh.motd, .wh.sub),
//                        rewrites etc/hostname ("changed")
//   3 (umoci raw add-layer of a GNU tar)  data/.wh..wh..opq (opaque) + data/new.txt
// plus a config set by `umoci config` ({@link V3_CONFIG}).
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { dir } from 'tmp-promise';
import { isRoot } from './capabilities.js';

const execFileAsync = promisify(execFile);

/** The image config `umoci config` gives tag `v3`, as {@link ImageConfig} reports it. */
export const V3_CONFIG = {
  env: ['PATH=/bin', 'FOO=bar'],
  entrypoint: ['/bin/busybox'],
  cmd: ['sh', '-c', 'echo hi'],
  workingDir: '/data',
  user: '1000:1000',
  exposedPorts: ['8080/tcp'],
  labels: { 'org.example.test': 'yes' },
};

/** mtime of etc/secret in layer 1. */
export const SECRET_MTIME = new Date('2001-02-03T04:05:06Z');

/** What {@link umociImage} built. */
export interface UmociImage {
  /** OCI layout with tags `base` (no layers), `v1`, `v2`, `v3`. */
  layout: string;
  /** The same `v3` image rewritten by skopeo: Docker schema 2 media types (gzip layers), one tag. */
  docker: string;
  /** The same `v3` image with zstd layers (skopeo), one tag. */
  zstd: string;
  /** The same `v3` image with uncompressed layers (skopeo), one tag. */
  uncompressed: string;
}

let built: Promise<{ image: UmociImage; cleanup: () => Promise<void> }> | undefined;

/**
 * The test image, built on first call into a temp dir; later calls share it. Treat it as
 * read-only (copy a layout before changing it). Call {@link removeUmociImage} in `test.after.always`.
 *
 * @example
 * const { layout } = await umociImage();
 */
export async function umociImage(): Promise<UmociImage> {
  built ??= build();
  return (await built).image;
}

/** Removes the temp dir of {@link umociImage}, if it was built. */
export async function removeUmociImage(): Promise<void> {
  const pending = built;
  built = undefined;
  await (await pending?.catch(() => undefined))?.cleanup();
}

async function build(): Promise<{ image: UmociImage; cleanup: () => Promise<void> }> {
  const tmp = await dir({ prefix: 'nsbox-umoci-', unsafeCleanup: true });
  const at = (name: string) => path.join(tmp.path, name);
  const layout = at('oci');
  const rootless = isRoot() ? [] : ['--rootless'];

  await run('umoci', ['init', '--layout', layout]);
  await run('umoci', ['new', '--image', `${layout}:base`]);

  await run('umoci', ['unpack', ...rootless, '--image', `${layout}:base`, at('b1')]);
  await writeBaseLayer(path.join(at('b1'), 'rootfs'));
  await run('umoci', ['repack', '--image', `${layout}:v1`, at('b1')]);

  await run('umoci', ['unpack', ...rootless, '--image', `${layout}:v1`, at('b2')]);
  const rootfs2 = path.join(at('b2'), 'rootfs');
  await fs.rm(path.join(rootfs2, 'etc/motd'));
  await fs.rm(path.join(rootfs2, 'data/sub'), { recursive: true });
  await fs.writeFile(path.join(rootfs2, 'etc/hostname'), 'changed\n');
  await run('umoci', ['repack', '--image', `${layout}:v2`, at('b2')]);

  // umoci never writes opaque whiteouts, so layer 3 is a tar made by GNU tar and added verbatim.
  await fs.mkdir(at('l3/data'), { recursive: true });
  await fs.writeFile(at('l3/data/.wh..wh..opq'), '');
  await fs.writeFile(at('l3/data/new.txt'), 'new\n');
  await run('tar', ['-C', at('l3'), '-cf', at('l3.tar'), 'data']);
  await run('umoci', ['raw', 'add-layer', '--image', `${layout}:v2`, '--tag', 'v3', at('l3.tar')]);
  await run('umoci', [
    'config', '--image', `${layout}:v3`,
    ...V3_CONFIG.env.map((e) => `--config.env=${e}`),
    ...V3_CONFIG.entrypoint.map((e) => `--config.entrypoint=${e}`),
    ...V3_CONFIG.cmd.map((c) => `--config.cmd=${c}`),
    `--config.workingdir=${V3_CONFIG.workingDir}`,
    `--config.user=${V3_CONFIG.user}`,
    ...V3_CONFIG.exposedPorts.map((p) => `--config.exposedports=${p}`),
    ...Object.entries(V3_CONFIG.labels).map(([k, v]) => `--config.label=${k}=${v}`),
  ]);

  const source = `oci:${layout}:v3`;
  await run('skopeo', ['copy', '--quiet', '--format', 'v2s2', source, `oci:${at('docker')}:v3`]);
  await run('skopeo', ['copy', '--quiet', '--dest-compress', '--dest-compress-format', 'zstd', source, `oci:${at('zstd')}:v3`]);
  // skopeo decompresses only into its `dir:` format; from there it keeps layers as they are.
  await run('skopeo', ['copy', '--quiet', '--dest-decompress', source, `dir:${at('plain-dir')}`]);
  await run('skopeo', ['copy', '--quiet', '--dest-oci-accept-uncompressed-layers', `dir:${at('plain-dir')}`, `oci:${at('plain')}:v3`]);

  return {
    image: { layout, docker: at('docker'), zstd: at('zstd'), uncompressed: at('plain') },
    cleanup: tmp.cleanup,
  };
}

async function writeBaseLayer(rootfs: string): Promise<void> {
  const p = (rel: string) => path.join(rootfs, rel);
  for (const d of ['bin', 'etc', 'tmp', 'data/sub']) await fs.mkdir(p(d), { recursive: true });
  await fs.chmod(p('tmp'), 0o1777);
  await fs.copyFile('/bin/busybox', p('bin/busybox'));
  await fs.chmod(p('bin/busybox'), 0o755);
  await fs.symlink('busybox', p('bin/sh'));
  await fs.writeFile(p('etc/hostname'), 'base\n');
  await fs.link(p('etc/hostname'), p('etc/hostname.hard'));
  await fs.writeFile(p('etc/motd'), 'hello\n');
  await fs.writeFile(p('etc/secret'), 's\n');
  if (isRoot()) await fs.chown(p('etc/secret'), 1000, 1001);
  await fs.chmod(p('etc/secret'), 0o640);
  await fs.utimes(p('etc/secret'), SECRET_MTIME, SECRET_MTIME);
  await fs.writeFile(p('data/old.txt'), 'old\n');
  await fs.writeFile(p('data/sub/x'), 'x\n');
}

async function run(file: string, args: string[]): Promise<void> {
  try {
    await execFileAsync(file, args);
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr?.trim();
    throw new Error(`\`${file} ${args.join(' ')}\` failed: ${stderr || (error as Error).message}`, { cause: error });
  }
}
