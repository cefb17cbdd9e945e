// The size budget: dist/oie.js ≤ 12 KB minified and ≤ 4 KB gzipped (aim: 3 KB).
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';

const code = readFileSync(new URL('../dist/oie.js', import.meta.url));
const min = code.length;
const gz = gzipSync(code, { level: 9 }).length;
console.log(`pixel size: ${min} bytes minified, ${gz} bytes gzipped (budget 12288 / 4096, aim 3072 gzipped)`);
if (min > 12 * 1024 || gz > 4 * 1024) {
  console.error('pixel size budget exceeded');
  process.exit(1);
}
