// Prints the pixel's size and its main-thread cost on page load in Chromium:
// - blocking: time between performance marks right before and after the pixel inlined in the
//   page (parsing, evaluation and the synchronous part of start-up; the real tag is async, so
//   its download never blocks);
// - total: the main-thread task time (Chromium's TaskDuration metric) of a page with the pixel
//   minus the same page without it, once the pixel has started up (idle-time work included).
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { gzipSync } from 'node:zlib';
import { chromium } from 'playwright-core';

const code = readFileSync(new URL('../dist/oie.js', import.meta.url));
const page = (pixel) => `<!doctype html><html><head><title>bench</title>
<script>performance.mark('oie-start')</script>
${pixel ? `<script data-endpoint="/track">${code}</script>` : '<script></script>'}
<script>performance.mark('oie-end')</script></head><body><h1>Pricing</h1><div style="height:3000px"></div></body></html>`;
let tracked = 0;
const server = createServer((req, res) => {
  if (req.method === 'POST') {
    tracked++;
    res.writeHead(202).end();
  } else res.writeHead(200, { 'content-type': 'text/html' }).end(page(req.url.startsWith('/with')));
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const base = `http://127.0.0.1:${server.address().port}`;
const browser = await chromium.launch({
  executablePath: process.env.OIE_CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
});

async function load(path) {
  const context = await browser.newContext();
  const p = await context.newPage();
  const cdp = await context.newCDPSession(p);
  await cdp.send('Performance.enable');
  const before = tracked;
  await p.goto(`${base}${path}?i=ab3f9`);
  const blocking = await p.evaluate(() => performance.measure('oie', 'oie-start', 'oie-end').duration);
  if (path.startsWith('/with')) {
    while (tracked === before) await new Promise((r) => setTimeout(r, 10));
  } else await p.waitForTimeout(50);
  const { metrics } = await cdp.send('Performance.getMetrics');
  await context.close();
  return { blocking, task: metrics.find((m) => m.name === 'TaskDuration').value * 1000 };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const p90 = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * 0.9)];
const withPixel = [];
const without = [];
for (let i = 0; i < 30; i++) {
  withPixel.push(await load('/with/pricing'));
  without.push(await load('/without/pricing'));
}
await browser.close();
server.close();
const blocking = withPixel.map((r) => r.blocking);
const extra = median(withPixel.map((r) => r.task)) - median(without.map((r) => r.task));
console.log(`pixel size: ${code.length} bytes minified, ${gzipSync(code, { level: 9 }).length} bytes gzipped`);
console.log(`blocking main-thread cost on page load: median ${median(blocking).toFixed(2)} ms, p90 ${p90(blocking).toFixed(2)} ms (target < 5 ms)`);
console.log(`total main-thread time added, idle-time start-up included: median ${extra.toFixed(1)} ms over 30 loads`);
