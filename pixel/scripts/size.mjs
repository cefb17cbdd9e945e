// The size budget: dist/oie.js ≤ 8 KB minified and ≤ 3 KB (3,072 B) gzipped.
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';

const code = readFileSync(new URL('../dist/oie.js', import.meta.url));
const min = code.length;
const gz = gzipSync(code, { level: 9 }).length;
console.log(`pixel size: ${min} bytes minified, ${gz} bytes gzipped (budget 8192 / 3072)`);
if (min > 8 * 1024 || gz > 3 * 1024) {
  console.error('pixel size budget exceeded');
  process.exit(1);
}
