// Builds dist/oie.js: one minified IIFE for ES2020 browsers (every browser since early 2020;
// an older one fails to parse this script alone, never the page that loads it).
// `--check` builds in memory and fails if the committed dist/oie.js differs (it is served by
// `oie run` and embedded in its binary, so it must match the source).
import { readFileSync } from 'node:fs';
import { build } from 'esbuild';

const check = process.argv.includes('--check');
const result = await build({
  entryPoints: ['src/index.ts'],
  bundle: true,
  minify: true,
  format: 'iife',
  target: ['es2020'],
  outfile: 'dist/oie.js',
  legalComments: 'none',
  // Internal property names (never on the wire, in storage or in the DOM) get short names.
  mangleProps: /^(visibleSince|clock|failures|timer|sending|inflight|transport|schedule|maxDepth|blockedUntil|scrolled|save|due|drop|sent|kv|at)$/,
  logLevel: 'warning',
  write: !check,
});
if (check) {
  const fresh = result.outputFiles[0].text;
  let committed = '';
  try {
    committed = readFileSync('dist/oie.js', 'utf8');
  } catch {
    /* missing: reported below */
  }
  if (fresh !== committed) {
    console.error('dist/oie.js is stale: run `npm run build` in pixel/ and commit it');
    process.exit(1);
  }
  console.log('dist/oie.js matches a fresh build');
}
