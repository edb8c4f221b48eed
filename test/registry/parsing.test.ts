// SPDX-License-Identifier: Apache-2.0
// Image references, platforms, WWW-Authenticate challenges and Docker's config.json credentials, without a registry.
import fs from 'node:fs/promises';
import path from 'node:path';
import test from 'ava';
import { dir } from 'tmp-promise';
import { formatPlatform, matchesPlatform, parsePlatform, type Descriptor } from '../../src/image/manifest.js';
import { dockerConfigCredentials, parseChallenge } from '../../src/registry/auth.js';
import { schemeFor } from '../../src/registry/http.js';
import { formatReference, parseReference } from '../../src/registry/reference.js';

const digest = `sha256:${'ab'.repeat(32)}`;

test('Docker Hub defaults: docker.io, library/, latest', (t) => {
  t.deepEqual(parseReference('busybox'), { registry: 'docker.io', repository: 'library/busybox', tag: 'latest' });
  t.deepEqual(parseReference('acme/tool:1.2'), { registry: 'docker.io', repository: 'acme/tool', tag: '1.2' });
  t.deepEqual(parseReference('index.docker.io/library/busybox'), { registry: 'docker.io', repository: 'library/busybox', tag: 'latest' });
  t.is(formatReference(parseReference('busybox')), 'docker.io/library/busybox:latest');
});

test('a first component with a dot, a port or localhost is the registry', (t) => {
  t.deepEqual(parseReference('127.0.0.1:5000/busybox:1'), { registry: '127.0.0.1:5000', repository: 'busybox', tag: '1' });
  t.deepEqual(parseReference('localhost/a/b/c'), { registry: 'localhost', repository: 'a/b/c', tag: 'latest' });
  t.deepEqual(parseReference('ghcr.io/acme/tool'), { registry: 'ghcr.io', repository: 'acme/tool', tag: 'latest' });
  t.deepEqual(parseReference('[::1]:5000/x'), { registry: '[::1]:5000', repository: 'x', tag: 'latest' });
});

test('a digest pins the image; with a tag too, the digest wins', (t) => {
  t.deepEqual(parseReference(`127.0.0.1:5000/busybox@${digest}`), { registry: '127.0.0.1:5000', repository: 'busybox', digest });
  const both = parseReference(`127.0.0.1:5000/busybox:1@${digest}`);
  t.deepEqual(both, { registry: '127.0.0.1:5000', repository: 'busybox', tag: '1', digest });
  t.is(formatReference(both), `127.0.0.1:5000/busybox@${digest}`);
});

test('malformed references are ERR_INVALID_OPTION naming them', (t) => {
  for (const bad of ['', 'UPPER/case', 'busybox@sha256:xyz', 'busybox:bad/tag', 'a//b', 'busybox:', 'host:port:x/y']) {
    const error = t.throws(() => parseReference(bad), undefined, bad);
    t.is((error as { code?: string }).code, 'ERR_INVALID_OPTION', bad);
    t.true(error!.message.includes(`\`${bad}\``), bad);
  }
});

test('platforms: os/arch[/variant]; arm64 means arm64/v8; no variant asked matches any', (t) => {
  t.deepEqual(parsePlatform('linux/arm64'), { os: 'linux', architecture: 'arm64' });
  t.deepEqual(parsePlatform('linux/arm/v7'), { os: 'linux', architecture: 'arm', variant: 'v7' });
  t.is(formatPlatform(parsePlatform('linux/arm/v7')), 'linux/arm/v7');
  for (const bad of ['linux', 'linux/', 'linux/arm/', 'a/b/c/d']) {
    t.is((t.throws(() => parsePlatform(bad)) as { code?: string }).code, 'ERR_INVALID_OPTION', bad);
  }
  const entry = (platform?: Descriptor['platform']): Descriptor => ({ mediaType: '', digest, size: 0, annotations: {}, ...(platform && { platform }) });
  t.true(matchesPlatform(entry({ os: 'linux', architecture: 'arm64', variant: 'v8' }), parsePlatform('linux/arm64')));
  t.true(matchesPlatform(entry({ os: 'linux', architecture: 'arm64' }), parsePlatform('linux/arm64/v8')));
  t.true(matchesPlatform(entry({ os: 'linux', architecture: 'arm', variant: 'v7' }), parsePlatform('linux/arm')));
  t.false(matchesPlatform(entry({ os: 'linux', architecture: 'arm', variant: 'v6' }), parsePlatform('linux/arm/v7')));
  t.false(matchesPlatform(entry({ os: 'windows', architecture: 'amd64' }), parsePlatform('linux/amd64')));
  t.false(matchesPlatform(entry({ os: 'unknown', architecture: 'unknown' }), parsePlatform('linux/amd64'))); // an attestation
  t.true(matchesPlatform(entry(), parsePlatform('linux/amd64')));
});

test('WWW-Authenticate challenges are parsed with quoted and bare values', (t) => {
  t.deepEqual(parseChallenge('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"'), {
    scheme: 'bearer',
    params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/busybox:pull' },
  });
  t.deepEqual(parseChallenge('Basic realm=nsbox'), { scheme: 'basic', params: { realm: 'nsbox' } });
  t.deepEqual(parseChallenge('Bearer realm="a \\"b\\"", error="invalid_token"'), { scheme: 'bearer', params: { realm: 'a "b"', error: 'invalid_token' } });
  t.is(parseChallenge(''), undefined);
});

test('plain http only for loopback hosts, unless insecure', (t) => {
  t.is(schemeFor('127.0.0.1:5000', false), 'http:');
  t.is(schemeFor('localhost', false), 'http:');
  t.is(schemeFor('[::1]:5000', false), 'http:');
  t.is(schemeFor('registry.example.com:5000', false), 'https:');
  t.is(schemeFor('10.0.0.1:5000', false), 'https:');
  t.is(schemeFor('10.0.0.1:5000', true), 'http:');
});

test('credentials come from $DOCKER_CONFIG/config.json, keys with or without scheme and path', async (t) => {
  const tmp = await dir({ unsafeCleanup: true });
  t.teardown(() => tmp.cleanup());
  const auth = (user: string) => Buffer.from(`${user}:pa:ss`).toString('base64');
  await fs.writeFile(path.join(tmp.path, 'config.json'), JSON.stringify({
    auths: {
      '127.0.0.1:5000': { auth: auth('local') },
      'https://index.docker.io/v1/': { auth: auth('hub') },
      'https://ghcr.io': { auth: auth('gh') },
    },
  }));
  const saved = process.env.DOCKER_CONFIG;
  process.env.DOCKER_CONFIG = tmp.path;
  t.teardown(() => {
    if (saved === undefined) delete process.env.DOCKER_CONFIG;
    else process.env.DOCKER_CONFIG = saved;
  });
  t.deepEqual(await dockerConfigCredentials('127.0.0.1:5000'), { username: 'local', password: 'pa:ss' });
  t.deepEqual(await dockerConfigCredentials('docker.io'), { username: 'hub', password: 'pa:ss' });
  t.deepEqual(await dockerConfigCredentials('ghcr.io'), { username: 'gh', password: 'pa:ss' });
  t.is(await dockerConfigCredentials('127.0.0.1:5001'), undefined);
  await fs.writeFile(path.join(tmp.path, 'config.json'), '{');
  t.is((await t.throwsAsync(dockerConfigCredentials('ghcr.io')) as { code?: string }).code, 'ERR_REGISTRY');
});
