// The operator's console (`/console` of `oie run`) in real Chromium: sign in (a wrong token
// refused), Now shows the leads `oie simulate` made hot with their scores, a lead's page shows
// its sessions and the delivery, a dead letter replayed from the page reaches the receiver, a
// new hot lead appears on the open page within a second, a parked connector shows its reason
// and resumes from its button, a form without its CSRF token is refused — and no page logs an
// error or a CSP violation. Screenshots of each page go to $OIE_SCREENSHOTS (default: a temp
// dir); docs/console/ holds copies. (It lives with the pixel's end-to-end tests for their
// Chromium and playwright-core.)

import { spawn, spawnSync, ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync, existsSync } from 'node:fs';
import { createServer, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Browser, Page } from 'playwright-core';
import { launchChromium } from './chromium';
import { daemonBase } from './daemon';

const OIE = process.env.OIE_BIN || '';
const TOKEN = 'e2e-console-token-0123456789abcdef';
const ENV = { ...process.env, OIE_TEST_E2E_TOKEN: TOKEN };

describe.skipIf(!OIE && process.env.CI !== 'true')('the operator console in Chromium', () => {
  let browser: Browser;
  let receiver: Server;
  let oie: ChildProcess;
  let base = '';
  const dir = mkdtempSync(join(tmpdir(), 'oie-console-'));
  const shots = process.env.OIE_SCREENSHOTS || join(dir, 'screenshots');
  const received: string[] = [];
  // The alerts' receiver refuses (422: dead letters) until `accepting`; the "crm-ish" one
  // answers 401 (the connector parks) until `authorized`.
  let accepting = false;
  let authorized = false;
  const config = () => join(dir, 'config.toml');

  beforeAll(async () => {
    if (!OIE || !existsSync(OIE)) throw new Error('set OIE_BIN to the oie binary (scripts/test does)');
    mkdirSync(shots, { recursive: true });
    receiver = createServer((req, res) => {
      let raw = '';
      req.on('data', (c) => (raw += c));
      req.on('end', () => {
        if (req.url === '/strict') {
          res.writeHead(authorized ? 200 : 401).end();
          return;
        }
        if (!accepting) {
          res.writeHead(422).end('not yet');
          return;
        }
        received.push(raw);
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    const at = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
    writeFileSync(config(), `
[engine]
log_level = "warn"
[server]
listen = "127.0.0.1:0"
admin_token = "\${OIE_TEST_E2E_TOKEN}"
[sources.leads]
interval = "200ms"
[delivery]
backoff_base = "100ms"
backoff_max = "400ms"
[[routes]]
name = "hot"
when = 'trigger.kind == "hot_lead"'
to = ["hook", "strict"]
[connectors.hook]
kind = "webhook"
url = "${at}/alerts"
max_attempts = 1
[connectors.strict]
kind = "webhook"
url = "${at}/strict"
`);
    oie = spawn(OIE, ['run', '--config', config()], { stdio: 'ignore', env: ENV });
    base = await daemonBase(dir);
    const simulated = spawnSync(OIE, ['simulate', '--visitors', '10', '--target', base, '--prefix', 's', '--config', config()], { env: ENV });
    expect(simulated.status, String(simulated.stderr)).toBe(0);
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    oie?.kill('SIGTERM');
    receiver?.close();
  });

  /** The API's view, for checking what the pages show. */
  const api = async (path: string) => {
    const r = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${TOKEN}` } });
    return r.json() as Promise<any>;
  };

  const until = async (what: string, ms: number, done: () => Promise<boolean>) => {
    const deadline = Date.now() + ms;
    while (!(await done())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };

  it('signs in, shows, replays, resumes and goes live without an error', async () => {
    // The two buyers' alerts: dead letters at `hook`, and `strict` parked on 401.
    await until('two dead letters and strict parked', 30000, async () => {
      const letters = (await api('/api/v1/deadletters')).deadLetters || [];
      const strict = ((await api('/api/v1/connectors')).connectors || []).find((c: any) => c.connector === 'strict');
      return letters.length >= 2 && strict?.state === 'parked';
    });
    const context = await browser.newContext();
    const page: Page = await context.newPage();
    const errors: string[] = [];
    // The 401 of the wrong sign-in and the 403 of the forged form are this test's own doing.
    const expected = /status of (401|403)/;
    page.on('console', (m) => { if (m.type() === 'error' && !expected.test(m.text())) errors.push(m.text()); });
    page.on('pageerror', (e) => errors.push(String(e)));

    // Sign in: a wrong token is refused, the right one lands on Now.
    await page.goto(`${base}/console`);
    expect(page.url()).toBe(`${base}/console/signin`);
    expect(await page.title()).toBe('Sign in · oie');
    await page.fill('input[name=token]', 'wrong');
    await page.keyboard.press('Enter');
    await page.waitForSelector('[role=alert]');
    expect(await page.textContent('[role=alert]')).toContain('not the admin token');
    await page.fill('input[name=token]', TOKEN);
    await page.keyboard.press('Enter');
    await page.waitForURL(`${base}/console`);
    expect(await page.title()).toBe('Now · oie');

    // Now: the simulated buyers, with the scores the API gives.
    const now = await api('/api/v1/now');
    const buyers = now.items.filter((i: any) => i.kind === 'lead');
    expect(buyers.length).toBe(2);
    for (const b of buyers) {
      const row = page.locator(`tr:has(a[href="/console/leads/${b.visitorId}"])`);
      await expect(row.count()).resolves.toBe(1);
      expect(await row.locator('td').nth(3).textContent()).toBe(String(b.score));
    }
    await page.screenshot({ path: join(shots, 'now.png'), fullPage: true });

    // A lead's page: its sessions and the delivery.
    await page.click(`a[href="/console/leads/${buyers[0].visitorId}"]`);
    await page.waitForSelector('h2:has-text("Sessions")');
    expect(await page.locator('h3').count()).toBeGreaterThan(0);
    expect(await page.textContent('body')).toContain('hot_lead');
    await page.screenshot({ path: join(shots, 'lead.png'), fullPage: true });

    // Deliveries: look first, then replay to the fixed receiver.
    await page.click('nav >> text=Deliveries');
    await page.waitForSelector('input[name=id]');
    await page.screenshot({ path: join(shots, 'deliveries.png'), fullPage: true });
    await page.locator('input[name=id]').first().check();
    await page.click('button[name=dry][value="1"]');
    await page.waitForSelector('text=What a replay sends');
    expect(await page.textContent('main')).toContain('oie.hot_lead');
    await page.goto(`${base}/console/deliveries`);
    accepting = true;
    await page.locator('input[name=id]').first().check();
    await page.click('button[name=dry][value="0"]');
    await page.waitForSelector('h1:has-text("Replayed")');
    await until('the replayed alert', 10000, async () => received.length === 1);

    // A form without its CSRF token is refused.
    const forged = await page.evaluate(async () => {
      const r = await fetch('/console/deliveries/replay', {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: 'id=1&dry=1',
      });
      return r.status;
    });
    expect(forged).toBe(403);

    // Connectors: strict parked with its reason; Resume once the endpoint is fixed.
    await page.click('nav >> text=Connectors');
    const strict = page.locator('tr:has(td:text-is("strict"))');
    expect(await strict.textContent()).toContain('parked');
    expect(await strict.textContent()).toContain('auth');
    await page.screenshot({ path: join(shots, 'connectors.png'), fullPage: true });
    authorized = true;
    await strict.locator('button:has-text("Resume")').click();
    await until('strict resumed', 15000, async () => {
      const c = ((await api('/api/v1/connectors')).connectors || []).find((x: any) => x.connector === 'strict');
      return c?.state === 'ok';
    });
    await page.reload();
    expect(await page.locator('tr:has(td:text-is("strict"))').textContent()).toContain('ok');

    // Live: a new hot lead appears on the open Now page.
    await page.click('nav >> text=Now');
    await page.waitForSelector('#now');
    writeFileSync(join(dir, 'new.jsonl'), JSON.stringify({
      visitorId: 'live1', firstName: 'Lia', lastName: 'Live', company: 'Livewire', intentScore: 90,
      engagementLevel: 'burning', lastVisitAt: Date.now(),
    }) + '\n');
    const imported = spawnSync(OIE, ['leads', 'import', join(dir, 'new.jsonl'), '--config', config()], { env: ENV });
    expect(imported.status, String(imported.stderr)).toBe(0);
    const importedAt = Date.now();
    await page.waitForSelector('tr[id^="rise-live1-"]', { timeout: 5000 });
    console.log(`console: a new rise on the open Now page ${Date.now() - importedAt} ms after the import returned`);

    // Sign out.
    await page.click('button:has-text("Sign out")');
    await page.waitForURL(`${base}/console/signin`);
    expect(errors, 'no console error or CSP violation').toEqual([]);
    await context.close();
  });
});
