// SPDX-License-Identifier: Apache-2.0
// zstd layers: skopeo's zstd variant of the umoci image unpacks to exactly the tree of its gzip original; broken zstd is a clear error.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import test from 'ava';
import { dir } from 'tmp-promise';
import { resolveOciImage } from '../../src/image/layer-store.js';
import { readOciImage } from '../../src/image/oci-layout.js';
import { ZstdDecompressStream } from '../../src/image/zstd.js';
import { run } from '../../src/index.js';
import { isRoot } from '../helpers/capabilities.js';
import { removeUmociImage, umociImage } from '../helpers/umoci-image.js';

const execFileAsync = promisify(execFile);
const scratch = dir({ prefix: 'nsbox-zstd-test-', unsafeCleanup: true });
test.after.always(async () => {
  await (await scratch).cleanup();
  await removeUmociImage();
});

/** Every path under `root` with its type, mode, owner, size, mtime and content hash (or link target). */
async function tree(root: string): Promise<string[]> {
  const lines: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    for (const name of (await fs.readdir(path.join(root, rel))).sort()) {
      const child = path.join(rel, name);
      const abs = path.join(root, child);
      const st = await fs.lstat(abs);
      let what = '';
      if (st.isFile()) what = createHash('sha256').update(await fs.readFile(abs)).digest('hex');
      else if (st.isSymbolicLink()) what = await fs.readlink(abs);
      // Whiteout nodes and implicit parent directories get the time of the unpack (with a fraction); tar times are whole seconds.
      const mtime = Number.isInteger(st.mtimeMs) ? st.mtimeMs : 'now';
      lines.push(`${child} ${st.mode.toString(8)} ${st.uid}:${st.gid} ${st.size} ${mtime} ${what}`);
      if (st.isDirectory()) await walk(child);
    }
  };
  await walk('');
  return lines;
}

test('a zstd image (skopeo --dest-compress-format zstd) unpacks to the same trees as its gzip original', async (t) => {
  const { layout, zstd } = await umociImage();
  const image = await readOciImage(zstd);
  t.deepEqual(image.layers.map((l) => l.compression), ['zstd', 'zstd', 'zstd']);
  const scratchPath = (await scratch).path;
  const fromZstd = await resolveOciImage(zstd, { cacheRoot: path.join(scratchPath, 'zstd-cache'), rootless: !isRoot() });
  const fromGzip = await resolveOciImage(layout, { tag: 'v3', cacheRoot: path.join(scratchPath, 'gzip-cache'), rootless: !isRoot() });
  t.is(fromZstd.layers.length, 3);
  for (let i = 0; i < 3; i++) t.deepEqual(await tree(fromZstd.layers[i]), await tree(fromGzip.layers[i]));
  t.deepEqual(fromZstd.config, fromGzip.config);
  const result = await run({ image: { layers: fromZstd.layers, config: fromZstd.config }, command: ['cat', '/etc/hostname', '/data/new.txt'], user: '0' });
  t.is(result.stdout, 'changed\nnew\n', result.stderr);
});

test('truncated or corrupt zstd data is ERR_IMAGE_INVALID naming the layer', async (t) => {
  const input = path.join((await scratch).path, 'data');
  await fs.writeFile(input, Buffer.alloc(1 << 20, 'nsbox zstd test '));
  await execFileAsync('zstd', ['-q', '-f', input, '-o', `${input}.zst`]);
  const compressed = await fs.readFile(`${input}.zst`);
  const decompress = (bytes: Buffer) => pipeline(Readable.from([bytes]), new ZstdDecompressStream('Layer sha256:test'), new Writable({ write: (_c, _e, cb) => cb() }));
  await t.notThrowsAsync(decompress(compressed));
  for (const broken of [compressed.subarray(0, compressed.length - 5), Buffer.concat([compressed.subarray(0, 6), Buffer.alloc(64, 0xff)])]) {
    const error = await t.throwsAsync(decompress(broken));
    t.like(error, { code: 'ERR_IMAGE_INVALID' });
    t.regex(error!.message, /^Layer sha256:test: broken zstd data/);
  }
});
