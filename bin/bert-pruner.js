#!/usr/bin/env node
// The CLI entry: the bundled engine lives in dist/ (npm run build).
require('../dist/cli.js')
  .main(process.argv.slice(2))
  .then((code) => process.exit(code));
