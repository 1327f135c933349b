#!/usr/bin/env node
'use strict';
// Thin launcher so the bin link exists before the first build; the real code is the bundle in dist/.
const { existsSync } = require('node:fs');
const { join } = require('node:path');

const bundle = join(__dirname, '..', 'dist', 'main.js');
if (!existsSync(bundle)) {
  process.stderr.write('wsmon-agent: not built yet; run `npm run build` in the repository root\n');
  process.exit(2);
}
require(bundle);
