#!/usr/bin/env node
// The CLI entry: the bundled engine lives in dist/ (npm run build).
const fs = require('node:fs');
const path = require('node:path');

const cli = path.join(__dirname, '..', 'dist', 'cli.js');
if (!fs.existsSync(cli)) {
  // After `npm ci` alone: one line instead of a "Cannot find module" stack trace.
  console.error('bert-pruner: not built yet: run `npm run build` first (dist/cli.js is missing)');
  process.exit(2);
}
require(cli)
  .main(process.argv.slice(2))
  .then((code) => process.exit(code));
