#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
// The nsbox command: runs the built CLI (dist/cli.js; build it with `npm run build`).
import '../dist/cli.js';
