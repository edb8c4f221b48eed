// SPDX-License-Identifier: Apache-2.0
// Pulls one image into a store from a separate process: `node --import tsx pull-process.ts <store root> <reference>`.
import { ImageStore } from '../../../src/index.js';

const [root, reference] = process.argv.slice(2);
const store = await ImageStore.open({ root });
const image = await store.pull(reference);
process.stdout.write(JSON.stringify({ digest: image.digest }));
