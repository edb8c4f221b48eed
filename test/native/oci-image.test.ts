// SPDX-License-Identifier: Apache-2.0
// Running from an OCI image layout written by umoci: layers, whiteouts and the image config.
import test from 'ava';
import { run } from '../../src/index.js';
import { busyboxOciLayout, probeOciLayout, MOTD_TEXT } from '../helpers/probe-image.js';

test('an OCI layout runs with its layers stacked and its whiteouts applied', async (t) => {
  const { dir } = await busyboxOciLayout();
  const result = await run({ image: dir, command: ['sh', '-c', 'ls /bin/yes 2>&1; cat /etc/motd'] });
  t.regex(result.stdout, /No such file/);
  t.true(result.stdout.endsWith(MOTD_TEXT));
  t.regex(result.image, /@sha256:[0-9a-f]{64}$/);
});

test('the image config gives the defaults: Cmd, Env and WorkingDir', async (t) => {
  const { dir } = await probeOciLayout();
  const byDefault = await run({ image: dir, stdin: 'echo from-cmd; echo $PATH; pwd' });
  t.is(byDefault.stdout, 'from-cmd\n/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n/\n');
  t.deepEqual(byDefault.command, ['sh']);
  const overridden = await run({ image: dir, command: ['probe', 'id'], user: 'app' });
  t.regex(overridden.stdout, /^uid=1000 gid=1000/);
});

test('a missing image is ERR_IMAGE_NOT_FOUND', async (t) => {
  const error = await t.throwsAsync(run({ image: '/no/such/image', command: ['true'] }));
  t.is((error as { code?: string }).code, 'ERR_IMAGE_NOT_FOUND');
  t.regex(error!.message, /\/no\/such\/image/);
});
