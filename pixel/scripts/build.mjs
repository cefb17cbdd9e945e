// Builds dist/oie.js: one IIFE for ES2020 browsers (every browser since early 2020; an older one
// fails to parse this script alone, never the page that loads it), bundled by esbuild and
// minified by terser (smaller than either alone).
// `--check` builds in memory and fails if the committed dist/oie.js differs (it is served by
// `oie run` and embedded in its binary, so it must match the source).
import { readFileSync, writeFileSync } from 'node:fs';
import { build } from 'esbuild';
import { minify } from 'terser';

const check = process.argv.includes('--check');
const bundled = await build({
  entryPoints: ['src/index.ts'],
  bundle: true,
  minify: true,
  format: 'iife',
  target: ['es2020'],
  legalComments: 'none',
  // Internal property names (never on the wire, in storage, in the DOM or on a built-in
  // object) get short names.
  mangleProps: /^(flush|flushOnExit|send|beacon|retry|afterMs|clear|size|del)$/,
  // Sloppy mode, as a classic script is: the code relies on nothing strict mode changes, and
  // the directive costs bytes.
  tsconfigRaw: { compilerOptions: { alwaysStrict: false } },
  logLevel: 'warning',
  write: false,
});
const { code } = await minify(bundled.outputFiles[0].text, {
  ecma: 2020,
  toplevel: true,
  compress: { passes: 3, pure_getters: true },
  mangle: true,
  // Chromium compiles every function of the script at once as it loads, instead of parsing each
  // again on its first call (V8's explicit compile hints; other engines read a comment).
  format: { preamble: '//# allFunctionsCalledOnLoad' },
});
if (!check) {
  writeFileSync('dist/oie.js', code);
} else {
  let committed = '';
  try {
    committed = readFileSync('dist/oie.js', 'utf8');
  } catch {
    /* missing: reported below */
  }
  if (code !== committed) {
    console.error('dist/oie.js is stale: run `npm run build` in pixel/ and commit it');
    process.exit(1);
  }
  console.log('dist/oie.js matches a fresh build');
}
