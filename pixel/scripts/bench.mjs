// What the pixel costs a page, against no tracker and against PostHog (posthog-js's array.js,
// the script its snippet loads), in Debian's Chromium:
// - script: Chromium's ScriptDuration over the first 1.5 s after navigation (compile, start-up,
//   idle-time work, listeners), median of fresh contexts;
// - task: TaskDuration over the same window (script plus the style, layout and parsing it causes);
// - floor (bench/floor.js): the same browser calls with no code around them, so what oie.js
//   costs above it is its own;
// - blocking: the synchronous cost before DOMContentLoaded — time between performance marks
//   around the tracker inlined in the page (parse, evaluation, synchronous start-up).
// Two pages: a plain one, and a heavy one (1,000 DOM nodes, 50 links, a form, a video) where
// listener costs show. Trackers post to this server, which answers 202.
//   node scripts/bench.mjs [loads per case, default 15]
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { gzipSync } from 'node:zlib';
import { chromium } from 'playwright-core';

const LOADS = Number(process.argv[2]) || 15;
// OIE_BENCH_WINDOW_MS=12000 measures a whole short visit instead (the first batch goes at 10 s).
const WINDOW_MS = Number(process.env.OIE_BENCH_WINDOW_MS) || 1500;
// OIE_PIXEL=path measures another build; OIE_PIXEL_BEFORE=path adds an older build as the
// tracker `before`, for before/after figures from one run.
const oie = readFileSync(process.env.OIE_PIXEL || new URL('../dist/oie.js', import.meta.url), 'utf8');
const before = process.env.OIE_PIXEL_BEFORE ? readFileSync(process.env.OIE_PIXEL_BEFORE, 'utf8') : '';
const floor = readFileSync(new URL('../bench/floor.js', import.meta.url), 'utf8');
const posthog = readFileSync(new URL('../node_modules/posthog-js/dist/array.js', import.meta.url), 'utf8');
const posthogVersion = JSON.parse(readFileSync(new URL('../node_modules/posthog-js/package.json', import.meta.url), 'utf8')).version;

// PostHog's own install snippet (it loads <api_host>/static/array.js), autocapture on as shipped.
const posthogSnippet = `!function(t,e){var o,n,p,r;e.__SV||(window.posthog=e,e._i=[],e.init=function(i,s,a){function g(t,e){var o=e.split(".");2==o.length&&(t=t[o[0]],e=o[1]),t[e]=function(){t.push([e].concat(Array.prototype.slice.call(arguments,0)))}}(p=t.createElement("script")).type="text/javascript",p.crossOrigin="anonymous",p.async=!0,p.src=s.api_host+"/static/array.js",(r=t.getElementsByTagName("script")[0]).parentNode.insertBefore(p,r);var u=e;for(void 0!==a?u=e[a]=[]:a="posthog",u.people=u.people||[],u.toString=function(t){var e="posthog";return"posthog"!==a&&(e+="."+a),t||(e+=" (stub)"),e},u.people.toString=function(){return u.toString(1)+".people (stub)"},o="capture identify alias people.set people.set_once set_config register register_once unregister opt_out_capturing has_opted_out_capturing opt_in_capturing reset isFeatureEnabled onFeatureFlags getFeatureFlag getFeatureFlagPayload reloadFeatureFlags group updateEarlyAccessFeatureEnrollment getEarlyAccessFeatures getActiveMatchingSurveys getSurveys onSessionId".split(" "),n=0;n<o.length;n++)g(u,o[n]);e._i.push([i,s,a])},e.__SV=1)}(document,window.posthog||[]);`;
const posthogInit = (host) => `posthog.init('phc_bench',{api_host:'${host}',person_profiles:'identified_only'})`;

const tags = {
  none: () => '<script></script>',
  oie: () => '<script async src="/oie.js" data-endpoint="/track"></script>',
  floor: () => '<script async src="/floor.js"></script>',
  'floor-nostrip': () => '<script async src="/floor.js" data-skip="strip"></script>',
  'floor-nostorage': () => '<script async src="/floor.js" data-skip="storage"></script>',
  before: () => '<script async src="/before.js" data-endpoint="/track"></script>',
  posthog: (host) => `<script>${posthogSnippet}${posthogInit(host)}</script>`,
};
// Inlined between marks: what runs before the parser may go on.
const inlined = {
  none: () => '<script></script>',
  oie: () => `<script data-endpoint="/track">${oie}</script>`,
  floor: () => `<script>${floor}</script>`,
  'floor-nostrip': () => `<script data-skip="strip">${floor}</script>`,
  'floor-nostorage': () => `<script data-skip="storage">${floor}</script>`,
  before: () => `<script data-endpoint="/track">${before}</script>`,
  posthog: (host) => `<script>${posthog}</script><script>${posthogInit(host)}</script>`,
};

const heavyBody = () => {
  const parts = ['<h1>Pricing</h1><nav>'];
  for (let i = 0; i < 50; i++) parts.push(`<a href="/docs/${i}?utm_source=x" class="link l${i}">Link ${i}</a>`);
  parts.push('</nav><form id="demo"><input name="email" type="email"><input name="company"><button>Send</button></form>');
  parts.push('<video src="/clip.mp4" width="320" height="180" controls></video><main>');
  for (let i = 0; i < 300; i++) parts.push(`<section><h3>Item ${i}</h3><p>Text <b>${i}</b></p></section>`);
  parts.push('</main><div style="height:3000px"></div>');
  return parts.join('');
};
const plainBody = () => '<h1>Pricing</h1><div style="height:3000px"></div>';

function page(url, host) {
  const u = new URL(url, host);
  const [, mode, tracker, kind] = u.pathname.split('/'); // /<tag|inline>/<tracker>/<plain|heavy>
  const tag = (mode === 'inline' ? inlined : tags)[tracker](host);
  const body = kind === 'heavy' ? heavyBody() : plainBody();
  return `<!doctype html><html><head><title>bench</title>
<script>performance.mark('t-start')</script>${tag}<script>performance.mark('t-end')</script></head><body>${body}</body></html>`;
}

let posts = 0;
const server = createServer((req, res) => {
  const path = req.url.split('?')[0];
  if (req.method === 'POST') {
    posts++;
    req.resume();
    res.writeHead(202, { 'access-control-allow-origin': '*' }).end();
  } else if (path === '/oie.js') {
    res.writeHead(200, { 'content-type': 'text/javascript' }).end(oie);
  } else if (path === '/before.js') {
    res.writeHead(200, { 'content-type': 'text/javascript' }).end(before);
  } else if (path === '/floor.js') {
    res.writeHead(200, { 'content-type': 'text/javascript' }).end(floor);
  } else if (path === '/static/array.js') {
    res.writeHead(200, { 'content-type': 'text/javascript' }).end(posthog);
  } else if (path.startsWith('/tag/') || path.startsWith('/inline/')) {
    res.writeHead(200, { 'content-type': 'text/html' }).end(page(req.url, base));
  } else {
    res.writeHead(200, { 'content-type': 'application/json', 'access-control-allow-origin': '*' }).end('{}');
  }
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const base = `http://127.0.0.1:${server.address().port}`;
// The browser's profile in memory where there is /dev/shm: disk writes made the figures noisier.
if (!process.env.TMPDIR && existsSync('/dev/shm')) process.env.TMPDIR = '/dev/shm';
const browser = await chromium.launch({
  executablePath: process.env.OIE_CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
});

/** One fresh context: script and task time over the window after navigation. */
async function load(path) {
  const context = await browser.newContext();
  const p = await context.newPage();
  const cdp = await context.newCDPSession(p);
  await cdp.send('Performance.enable');
  const start = Date.now();
  await p.goto(`${base}${path}?i=ab3f9`, { waitUntil: 'domcontentloaded' });
  const blocking = await p.evaluate(() => performance.measure('t', 't-start', 't-end').duration);
  await p.waitForTimeout(Math.max(0, WINDOW_MS - (Date.now() - start)));
  const { metrics } = await cdp.send('Performance.getMetrics');
  await context.close();
  const m = (name) => metrics.find((x) => x.name === name).value * 1000;
  return { script: m('ScriptDuration'), task: m('TaskDuration'), blocking };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
// OIE_BENCH_TRACKERS=none,oie leaves PostHog out (quicker, for trying a change);
// floor-nostrip and floor-nostorage are the floor without replaceState or without localStorage.
const trackers = (process.env.OIE_BENCH_TRACKERS || 'none,floor,oie,posthog').split(',');
if (before) trackers.splice(trackers.indexOf('oie'), 0, 'before');
const results = {};
for (const kind of ['plain', 'heavy']) {
  const runs = Object.fromEntries(trackers.map((t) => [t, []]));
  const blocking = Object.fromEntries(trackers.map((t) => [t, []]));
  // Interleaved, so drift in the machine's speed touches every tracker alike.
  for (let i = 0; i < LOADS; i++) {
    for (const t of trackers) {
      runs[t].push(await load(`/tag/${t}/${kind}`));
      blocking[t].push((await load(`/inline/${t}/${kind}`)).blocking);
    }
  }
  results[kind] = Object.fromEntries(
    trackers.map((t) => [
      t,
      {
        script: median(runs[t].map((r) => r.script)),
        task: median(runs[t].map((r) => r.task)),
        blocking: median(blocking[t]),
      },
    ]),
  );
}
await browser.close();
server.close();

const gz = (s) => gzipSync(s, { level: 9 }).length;
console.log(`oie.js ${oie.length} B minified, ${gz(oie)} B gzipped; posthog-js ${posthogVersion} array.js ${posthog.length} B, ${gz(posthog)} B gzipped`);
console.log(`medians of ${LOADS} fresh contexts each, first ${WINDOW_MS} ms after navigation (${posts} tracker requests answered)`);
const f = (x) => x.toFixed(2).padStart(8);
for (const [kind, r] of Object.entries(results)) {
  console.log(`\n${kind} page          script ms   task ms  blocking ms`);
  for (const t of trackers) console.log(`  ${t.padEnd(16)}${f(r[t].script)}  ${f(r[t].task)}  ${f(r[t].blocking)}`);
  const extra = (t) => r[t].script - r.none.script;
  console.log(`  oie script time ${f(r.oie.script)} ms (budget ${kind === 'plain' ? 5 : 8} ms); oie adds ${extra('oie').toFixed(2)} ms of script to the page`);
  if (r.before) console.log(`  oie / before: ${(r.oie.script / r.before.script).toFixed(2)}x script (before ${r.before.script.toFixed(2)} ms)`);
  if (r.floor) console.log(`  oie / floor: ${(r.oie.script / r.floor.script).toFixed(2)}x script (the floor adds ${extra('floor').toFixed(2)} ms)`);
  if (r.posthog) console.log(`  PostHog / oie: ${(r.posthog.script / r.oie.script).toFixed(1)}x script, ${(r.posthog.task / r.oie.task).toFixed(1)}x task; PostHog adds ${extra('posthog').toFixed(2)} ms of script`);
}
