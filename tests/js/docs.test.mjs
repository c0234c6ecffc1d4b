// The JavaScript in README.md and docs/operations.md runs as written against a real server: the
// README's pusher-js and SDK snippets, and the auth endpoint of docs/operations.md with its
// pusher-js and Laravel Echo clients on a private and a presence channel. Each block is written
// to a file in this directory (so that it imports this suite's packages) and run with node; only
// the credentials, the ports and 'localhost' are replaced.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { startServer } from './support/server.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '..', '..');
const WAIT_MS = 10_000;

/** The fenced ```js blocks of a Markdown file in the repository. */
function jsBlocks(file) {
  const text = readFileSync(join(repo, file), 'utf8');
  return [...text.matchAll(/^```js\n([\s\S]*?)^```/gm)].map((m) => m[1]);
}

/** The block whose first line (a comment) contains `name`. */
function block(blocks, name) {
  const found = blocks.filter((b) => b.split('\n')[0].includes(name));
  assert.equal(found.length, 1, `expected one js block whose first line names ${name}`);
  return found[0];
}

/** Blocks that cannot run here, and why; every other block must be run by a test below. */
const NOT_RUN = {
  'pusher-js behind TLS': 'needs a TLS proxy in front of the server',
  'resources/js/echo.js': 'needs Vite to fill import.meta.env',
  'web push subscription, in a page': "needs a browser's service worker and PushManager (hestia-push.test.mjs subscribes as one would)",
};

/** The snippet pointed at this test's servers. */
function localize(code, server, authPort = 3001) {
  return code
    .replaceAll("'YOUR_APP_ID'", `'${server.appId}'`)
    .replaceAll("'YOUR_APP_KEY'", `'${server.key}'`)
    .replaceAll("'YOUR_APP_SECRET'", `'${server.secret}'`)
    .replaceAll('6001', String(server.port))
    .replaceAll('localhost:3001', `localhost:${authPort}`)
    .replaceAll('localhost', '127.0.0.1');
}

const scratch = mkdtempSync(join(here, '.snippets-'));
const children = new Set();

/** Runs `code` as an ES module; `line(re)` resolves with the first stdout line matching `re`. */
function runSnippet(name, code, env = {}) {
  const file = join(scratch, name);
  writeFileSync(file, code);
  const child = spawn(process.execPath, [file], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  const lines = [];
  let stderr = '';
  const waiters = [];
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  let partial = '';
  child.stdout.on('data', (chunk) => {
    partial += chunk;
    const parts = partial.split('\n');
    partial = parts.pop();
    for (const l of parts) {
      lines.push(l);
      for (const w of [...waiters]) {
        if (w.re.test(l)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(l);
        }
      }
    }
  });
  child.stderr.on('data', (chunk) => {
    stderr += chunk;
  });
  const exited = new Promise((res) => child.once('exit', (code) => {
    children.delete(child);
    res(code);
  }));
  const line = (re) => {
    const seen = lines.find((l) => re.test(l));
    if (seen) return Promise.resolve(seen);
    return new Promise((res, rej) => {
      const timer = setTimeout(() => rej(new Error(`${name}: no line matching ${re} within ${WAIT_MS} ms.\nstdout:\n${lines.join('\n')}\nstderr:\n${stderr}`)), WAIT_MS);
      waiters.push({ re, resolve: (l) => { clearTimeout(timer); res(l); } });
    });
  };
  return { child, line, exited, stderr: () => stderr };
}

after(() => {
  for (const child of children) child.kill('SIGTERM');
  rmSync(scratch, { recursive: true, force: true });
});

describe('README.md', () => {
  let server;
  before(async () => {
    server = await startServer();
  });
  after(async () => {
    await server?.stop();
  });

  test('the pusher-js snippet receives what the SDK snippet triggers', async () => {
    const blocks = jsBlocks('README.md');
    assert.equal(blocks.length, 3, 'README.md has three js blocks, all run here');
    const client = runSnippet('readme-client.mjs', localize(block(blocks, 'pusher-js'), server));
    await client.line(/^subscribed to my-channel$/);
    const backend = runSnippet('readme-backend.mjs', localize(block(blocks, 'server SDK'), server));
    assert.equal(await backend.exited, 0, backend.stderr());
    await backend.line(/^triggered my-event$/);
    await client.line(/^received \{ hello: 'world' \}$/);
    client.child.kill('SIGTERM');
  });

  test('the socket.io-client snippet joins, relays and receives an emit', async () => {
    const client = runSnippet('readme-socketio.mjs', localize(block(jsBlocks('README.md'), 'socket.io-client'), server));
    await client.line(/^Connected to orders in workspace \d+$/);
    await client.line(/^relayed \{ text: 'hi' \}$/);
    const res = await fetch(`${server.url}/api/message/emit`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ app_id: server.appId, app_key: server.secret, channel_name: 'orders', body: { order: 7 } }),
    });
    assert.equal(res.status, 200, await res.text());
    await client.line(/^received \{ order: 7 \}$/);
    client.child.kill('SIGTERM');
  });
});

describe('docs/operations.md', () => {
  let server;
  let auth;
  let authPort;
  const blocks = jsBlocks('docs/operations.md');

  before(async () => {
    server = await startServer();
    // Run exactly as written: the endpoint takes everything from its environment.
    auth = runSnippet('auth-server.mjs', block(blocks, 'auth-server.mjs'), {
      PUSHER_APP_ID: server.appId,
      PUSHER_APP_KEY: server.key,
      PUSHER_APP_SECRET: server.secret,
      PUSHER_HOST: server.host,
      PUSHER_PORT: String(server.port),
      AUTH_PORT: '0',
    });
    const listening = await auth.line(/^auth endpoint on http:\/\/localhost:\d+\/pusher\/auth$/);
    authPort = Number(listening.match(/:(\d+)\//)[1]);
  });
  after(async () => {
    auth?.child.kill('SIGTERM');
    await server?.stop();
  });

  test('every js block is run by this suite or says why it cannot be', () => {
    const run = ['auth-server.mjs', 'client-pusher.mjs', 'client-echo.mjs'];
    for (const b of blocks) {
      const first = b.split('\n')[0];
      assert.ok([...run, ...Object.keys(NOT_RUN)].some((name) => first.includes(name)), `a js block nobody runs: ${first}`);
    }
  });

  test('the auth endpoint refuses a request without a session', async () => {
    const res = await fetch(`http://127.0.0.1:${authPort}/pusher/auth`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'socket_id=1.1&channel_name=private-orders',
    });
    assert.equal(res.status, 403);
  });

  test('pusher-js subscribes to a private and a presence channel through it', async () => {
    const client = runSnippet('client-pusher.mjs', localize(block(blocks, 'client-pusher.mjs'), server, authPort));
    await client.line(/^private-orders: subscribed$/);
    await client.line(/^presence-room: 1 member\(s\), me: Ada$/);
    client.child.kill('SIGTERM');
  });

  test('Laravel Echo does the same with authEndpoint and bearerToken', async () => {
    const client = runSnippet('client-echo.mjs', localize(block(blocks, 'client-echo.mjs'), server, authPort));
    await client.line(/^echo private-orders: subscribed$/);
    await client.line(/^echo presence-room: Ada$/);
    client.child.kill('SIGTERM');
  });
});
