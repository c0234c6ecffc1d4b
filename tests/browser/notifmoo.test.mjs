// notifmoo.js in a real browser (Debian's Chromium driven by playwright-core) against the real
// switchboard binary: a page on an allowed origin loads /notifmoo.js with a script tag,
// subscribes in onConnect and receives /api/broadcast events; a page on a foreign origin is
// refused; after a server restart the page resubscribes by itself and gets each event once.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

import { chromium } from 'playwright-core';

import { broadcast, cli, servePage, startServer } from './support.mjs';

const APP = { id: 'browser-app', key: 'browser-key', secret: 'browser-secret-0123456789' };
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const WAIT_MS = 20_000;

let dataDir;
let server;
let sbPort;
let allowedPage;
let foreignPage;
let browser;
let page;
const pageLogs = [];

// `apikey` in mixed case: the script reads its own src's query case-insensitively.
const html = () => `<!doctype html>
<html><head><meta charset="utf-8"><title>notifmoo</title></head><body>
<script src="http://127.0.0.1:${sbPort}/notifmoo.js?ApiKey=${APP.key}"></script>
<script>
  window.log = { received: [], early: [], errors: [], connects: 0, subscribed: 0 };
  NotifMoo.onError(function (e) { log.errors.push(e); });
  NotifMoo.onSubscriptionSucceeded('news', function () { log.subscribed += 1; });
  // Subscribed before the socket is open (queued), twice with the same handler (kept once).
  function onEarly(m) { log.early.push(m); }
  NotifMoo.subscribe('early', { onMessage: onEarly });
  NotifMoo.subscribe('early', { onMessage: onEarly });
  NotifMoo.onConnect(function () {
    log.connects += 1;
    NotifMoo.subscribe('news', { onMessage: function (m) { log.received.push(m); } });
  });
</script>
</body></html>`;

const env = () => ({
  SWITCHBOARD_APP_ID: APP.id,
  SWITCHBOARD_APP_KEY: APP.key,
  SWITCHBOARD_APP_SECRET: APP.secret,
});

async function openPage(port) {
  const p = await browser.newPage();
  p.on('console', (m) => pageLogs.push(`[${port}] ${m.type()}: ${m.text()}`));
  p.on('pageerror', (e) => pageLogs.push(`[${port}] pageerror: ${e.message}`));
  await p.goto(`http://127.0.0.1:${port}/`);
  return p;
}

const state = (p) => p.evaluate(() => ({ ...window.log, socketId: NotifMoo.socketId, readyState: NotifMoo.readyState }));

before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'switchboard-browser-'));
  allowedPage = await servePage(html);
  foreignPage = await servePage(html);
  await cli(
    ['apps', 'create', '--data-dir', dataDir, '--id', APP.id, '--key', APP.key, '--secret', APP.secret,
      '--name', 'browser', '--allowed-origin', `http://127.0.0.1:${allowedPage.port}`],
    env(),
  );
  server = await startServer({ dataDir, env: env() });
  sbPort = server.port;
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update'],
  });
});

after(async () => {
  if (pageLogs.length && process.env.VERBOSE) {
    console.log(pageLogs.join('\n'));
  }
  await browser?.close();
  await server?.stop();
  await allowedPage?.close();
  await foreignPage?.close();
  if (dataDir) {
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('serves /notifmoo.js as JavaScript', async () => {
  const res = await fetch(`http://127.0.0.1:${sbPort}/notifmoo.js`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /^application\/javascript/);
  assert.match(await res.text(), /NotifMoo/);
});

test('a page on the allowed origin receives a broadcast', async () => {
  page = await openPage(allowedPage.port);
  await page.waitForFunction(() => window.log.subscribed >= 1, null, { timeout: WAIT_MS });
  const s = await state(page);
  assert.equal(s.readyState, 'connected');
  assert.match(s.socketId, /^\d+\.\d+$/);
  assert.equal(await page.evaluate(() => NotifMoo.apikey), APP.key);

  const sent = await broadcast(sbPort, APP.secret, { channel: 'news', event: 'headline', data: { title: 'hello', n: 1 } });
  assert.equal(sent.status, 200, JSON.stringify(sent.body));
  assert.equal(sent.body.subscriber_count, 1);
  await page.waitForFunction(() => window.log.received.length >= 1, null, { timeout: WAIT_MS });
  const got = await state(page);
  assert.deepEqual(got.received, [{ event: 'headline', channel: 'news', data: { title: 'hello', n: 1 } }]);

  // The subscription queued before the socket opened went out, with its handler once: a later
  // marker arrives right after the event, with no second copy of either.
  await broadcast(sbPort, APP.secret, { channel: 'early', event: 'e', data: 'queued' });
  await broadcast(sbPort, APP.secret, { channel: 'early', event: 'marker', data: 1 });
  await page.waitForFunction(() => window.log.early.some((m) => m.event === 'marker'), null, { timeout: WAIT_MS });
  assert.deepEqual((await state(page)).early, [
    { event: 'e', channel: 'early', data: 'queued' },
    { event: 'marker', channel: 'early', data: 1 },
  ]);
  assert.deepEqual((await state(page)).errors, []);
});

test('a page on a foreign origin is refused', async () => {
  const foreign = await openPage(foreignPage.port);
  await foreign.waitForFunction(() => window.log.errors.length >= 1, null, { timeout: WAIT_MS });
  const s = await state(foreign);
  assert.equal(s.socketId, null);
  assert.equal(s.connects, 0);
  assert.notEqual(s.readyState, 'connected');
  assert.equal(s.subscribed, 0);
  await foreign.close();
});

test('after a server restart the page resubscribes and gets each event once', async () => {
  const before = await state(page);
  await server.stop();
  server = await startServer({ port: sbPort, dataDir, env: env() });
  assert.equal(server.port, sbPort);

  await page.waitForFunction(() => window.log.subscribed >= 2, null, { timeout: WAIT_MS });
  const s = await state(page);
  assert.equal(s.readyState, 'connected');
  assert.notEqual(s.socketId, before.socketId, 'a new connection');
  assert.equal(s.connects, 1, 'onConnect ran once per page');

  const sent = await broadcast(sbPort, APP.secret, { channel: 'news', event: 'headline', data: { n: 2 } });
  assert.equal(sent.status, 200, JSON.stringify(sent.body));
  assert.equal(sent.body.subscriber_count, 1, 'one socket, subscribed once');
  // A marker after it: once it is in, a duplicate of the headline would be in too.
  await broadcast(sbPort, APP.secret, { channel: 'news', event: 'marker', data: 2 });
  await page.waitForFunction(() => window.log.received.some((m) => m.event === 'marker'), null, { timeout: WAIT_MS });
  const got = await state(page);
  assert.deepEqual(got.received.slice(1), [
    { event: 'headline', channel: 'news', data: { n: 2 } },
    { event: 'marker', channel: 'news', data: 2 },
  ]);

  await broadcast(sbPort, APP.secret, { channel: 'early', event: 'e', data: 'again' });
  await broadcast(sbPort, APP.secret, { channel: 'early', event: 'marker', data: 2 });
  await page.waitForFunction(() => window.log.early.filter((m) => m.event === 'marker').length >= 2, null, { timeout: WAIT_MS });
  assert.deepEqual((await state(page)).early.slice(2), [
    { event: 'e', channel: 'early', data: 'again' },
    { event: 'marker', channel: 'early', data: 2 },
  ]);
  // A restart closes with "reconnect now", not a pusher:error (attempts made while the server
  // was down may report plain WebSocket errors, as the original did).
  assert.deepEqual((await state(page)).errors.filter((e) => e.code != null), []);
});
