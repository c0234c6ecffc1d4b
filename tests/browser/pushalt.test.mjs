// Push-Alt's browser clients against the real switchboard binary: a page on an allowed origin
// loads the official socket.io-client bundle, connects to `/ws` over HTTP long-polling (the
// browser's cross-origin XHRs, so CORS on the polling transport), joins with a channel token,
// upgrades to WebSocket and receives an emit; a page on a foreign origin is refused at the
// handshake.

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, test } from 'node:test';
import { createRequire } from 'node:module';

import { chromium } from 'playwright-core';

import { cli, startServer } from './support.mjs';

const APP = { id: 'pushalt-browser', key: 'pushalt-browser-key', secret: 'pushalt-browser-secret-0123456789' };
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const WAIT_MS = 20_000;
const require = createRequire(import.meta.url);
const bundle = readFileSync(join(dirname(require.resolve('socket.io-client/package.json')), 'dist', 'socket.io.min.js'));

let dataDir;
let server;
let browser;
let allowed;
let foreign;
const pageLogs = [];

/** A page server on its own origin: `/` is the page (its query carries what to join), `/io.js` the bundle. */
async function pageServer() {
  const http = createServer((req, res) => {
    if (req.url === '/io.js') {
      res.writeHead(200, { 'content-type': 'application/javascript' }).end(bundle);
      return;
    }
    if (req.url === '/favicon.ico') {
      res.writeHead(204).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    res.end(`<!doctype html>
<html><head><meta charset="utf-8"><title>push-alt</title></head><body>
<script src="/io.js"></script>
<script>
  const q = new URLSearchParams(location.search);
  window.log = { opened: [], connects: [], joined: [], got: [], errors: [], upgraded: null };
  const socket = io(q.get('server'), { path: '/ws', transports: ['polling', 'websocket'], reconnection: false });
  // The transport the engine opened on; by the time socket.io-client emits connect, a fast
  // upgrade may already have completed.
  socket.io.on('open', () => log.opened.push(socket.io.engine.transport.name));
  socket.on('connect', () => {
    log.connects.push(socket.io.engine.transport.name);
    socket.emit('join_channel', { token: q.get('token'), channel_name: q.get('channel') });
  });
  socket.io.engine.on('upgrade', (t) => { log.upgraded = t.name; });
  socket.on('connect_error', (e) => log.errors.push('connect_error: ' + e.message));
  socket.on('error', (e) => log.errors.push(e));
  socket.on('joined', (m) => log.joined.push(m));
  socket.on(q.get('listen'), (m) => log.got.push(m));
  window.transport = () => socket.io.engine.transport.name;
</script>
</body></html>`);
  });
  await new Promise((r) => http.listen(0, '127.0.0.1', r));
  return { port: http.address().port, close: () => new Promise((r) => http.close(r)) };
}

async function channelToken(channel) {
  const res = await fetch(`http://127.0.0.1:${server.port}/api/channel/auth`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ app_id: APP.id, app_key: APP.secret, channel_name: channel }),
  });
  const body = await res.json();
  assert.equal(res.status, 200, JSON.stringify(body));
  return body;
}

async function openPage(pages, query) {
  const p = await browser.newPage();
  p.on('console', (m) => pageLogs.push(`[${pages.port}] ${m.type()}: ${m.text()}`));
  p.on('pageerror', (e) => pageLogs.push(`[${pages.port}] pageerror: ${e.message}`));
  await p.goto(`http://127.0.0.1:${pages.port}/?${new URLSearchParams(query)}`);
  return p;
}

const state = (p) => p.evaluate(() => ({ ...window.log, transport: window.transport() }));

before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'switchboard-pushalt-browser-'));
  allowed = await pageServer();
  foreign = await pageServer();
  const env = { SWITCHBOARD_APP_ID: APP.id, SWITCHBOARD_APP_KEY: APP.key, SWITCHBOARD_APP_SECRET: APP.secret };
  await cli(
    ['apps', 'create', '--data-dir', dataDir, '--id', APP.id, '--key', APP.key, '--secret', APP.secret,
      '--name', 'pushalt-browser', '--allowed-origin', `http://127.0.0.1:${allowed.port}`],
    env,
  );
  server = await startServer({ dataDir, env });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update'],
  });
});

after(async () => {
  if (pageLogs.length && process.env.VERBOSE) console.log(pageLogs.join('\n'));
  await browser?.close();
  await server?.stop();
  await allowed?.close();
  await foreign?.close();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

test('a page joins over polling, upgrades to WebSocket and receives an emit', async () => {
  const channel = 'orders';
  const auth = await channelToken(channel);
  const page = await openPage(allowed, {
    server: `http://127.0.0.1:${server.port}`,
    token: auth.token,
    channel,
    listen: auth.message_listen_name,
  });
  await page.waitForFunction(() => window.log.joined.length >= 1 && window.log.upgraded === 'websocket', null, { timeout: WAIT_MS });
  const s = await state(page);
  assert.deepEqual(s.opened, ['polling'], 'opened over polling first');
  assert.equal(s.connects.length, 1);
  assert.equal(s.transport, 'websocket');
  assert.deepEqual(s.joined, [{ message: `Connected to ${channel} in workspace ${auth.data.workspace_id}` }]);

  const res = await fetch(`http://127.0.0.1:${server.port}/api/message/emit`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ app_id: APP.id, app_key: APP.secret, channel_name: channel, body: { text: 'to the browser' } }),
  });
  assert.equal(res.status, 200, await res.text());
  await page.waitForFunction(() => window.log.got.length >= 1, null, { timeout: WAIT_MS });
  assert.deepEqual((await state(page)).got, [{ text: 'to the browser' }]);
  assert.deepEqual((await state(page)).errors, []);
  await page.close();
});

test('a page on a foreign origin is refused at the handshake', async () => {
  const auth = await channelToken('orders');
  const page = await openPage(foreign, {
    server: `http://127.0.0.1:${server.port}`,
    token: auth.token,
    channel: 'orders',
    listen: auth.message_listen_name,
  });
  await page.waitForFunction(() => window.log.errors.length >= 1, null, { timeout: WAIT_MS });
  const s = await state(page);
  assert.deepEqual(s.connects, []);
  assert.deepEqual(s.joined, []);
  assert.match(String(s.errors[0]), /connect_error/);
  await page.close();
});
