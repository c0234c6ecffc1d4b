// The `/docs` page in a real browser (Debian's Chromium driven by playwright-core) against the
// real switchboard binary: it renders every operation of `/openapi.json`, grouped by tag, loads
// nothing from another host, and its "Send" form calls the API from the page.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

import { chromium } from 'playwright-core';

import { startServer } from './support.mjs';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const WAIT_MS = 20_000;

let dataDir;
let server;
let browser;

before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'switchboard-docs-'));
  server = await startServer({ dataDir });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
});

after(async () => {
  await browser?.close();
  await server?.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

test('the page renders every operation of the document by tag, from this server alone', async () => {
  const base = `http://127.0.0.1:${server.port}`;
  const doc = await (await fetch(`${base}/openapi.json`)).json();
  const methods = ['get', 'post', 'put', 'patch', 'delete', 'head', 'options'];
  let operations = 0;
  for (const item of Object.values(doc.paths)) operations += methods.filter((m) => item[m]).length;
  const page = await browser.newPage();
  const errors = [];
  const foreign = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
  page.on('request', (r) => !r.url().startsWith(base) && foreign.push(r.url()));
  await page.goto(`${base}/docs`);
  await page.waitForFunction((n) => document.querySelectorAll('details.op').length === n, operations, { timeout: WAIT_MS });
  const tags = await page.$$eval('#content h2', (hs) => hs.map((h) => h.textContent));
  for (const tag of ['Pusher HTTP API', 'Notif', 'Accounts', 'Dashboard', 'Push-Alt', 'Hestia', 'Engine.IO', 'Operations']) {
    assert.ok(tags.includes(tag), `${tag} in ${tags}`);
  }
  assert.match(await page.textContent('#title'), /Switchboard/);
  assert.deepEqual(errors, []);
  assert.deepEqual(foreign, []);

  // "Try it": GET /health from the page.
  const health = page.locator('details.op', { has: page.locator('.path', { hasText: /^\/health$/ }) });
  await health.locator('summary').click();
  await health.locator('button', { hasText: 'Send' }).click();
  await page.waitForFunction(() => /\n200 /.test(document.querySelector('details.op[open] pre')?.textContent ?? ''), null, { timeout: WAIT_MS });
  const answer = await health.locator('pre').last().textContent();
  assert.match(answer, /"service": "switchboard"/);
  await page.close();
});
