// Helpers for the browser tests: run the real switchboard binary (and its CLI) on a data dir,
// restart it on the same port, and serve small static pages from other origins.
//
// The binary comes from $SWITCHBOARD_BIN, or target/debug/switchboard at the repository root
// (`cargo build` first). The port is read from the "listening on http://127.0.0.1:<port>" line
// the server logs to stderr.

import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:http';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const here = dirname(fileURLToPath(import.meta.url));
const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 15_000;

export const binaryPath = () =>
  process.env.SWITCHBOARD_BIN
    ? resolve(process.env.SWITCHBOARD_BIN)
    : resolve(here, '..', '..', 'target', 'debug', 'switchboard');

function requireBinary() {
  const bin = binaryPath();
  if (!existsSync(bin)) {
    throw new Error(`switchboard binary not found at ${bin}: run \`cargo build\` at the repository root or set SWITCHBOARD_BIN`);
  }
  return bin;
}

// Servers still running when the process exits (a failed test) get SIGTERM by PID.
const running = new Set();
process.on('exit', () => {
  for (const child of running) {
    try {
      process.kill(child.pid, 'SIGTERM');
    } catch {
      // already gone
    }
  }
});

/** Runs `switchboard <args…>` (the CLI) to completion; resolves with its stdout. */
export async function cli(args, env = {}) {
  const { stdout } = await promisify(execFile)(requireBinary(), args, {
    env: { ...process.env, LOG_LEVEL: 'warn', ...env },
    timeout: 60_000,
  });
  return stdout;
}

/**
 * Starts `switchboard serve` on `port` (0 picks one) with `dataDir`.
 * @returns {Promise<{port: number, pid: number, logs: () => string, stop: () => Promise<void>}>}
 */
export async function startServer({ port = 0, dataDir, env = {} }) {
  const bin = requireBinary();
  const child = spawn(bin, ['serve', '--port', String(port), '--bind', '127.0.0.1', '--data-dir', dataDir], {
    env: { ...process.env, LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  running.add(child);
  let stderr = '';
  child.stderr.setEncoding('utf8');
  const exited = new Promise((done) => {
    child.once('exit', (code, signal) => {
      running.delete(child);
      done({ code, signal });
    });
  });
  const actualPort = await new Promise((done, fail) => {
    const timer = setTimeout(() => fail(new Error(`no listening line within ${START_TIMEOUT_MS} ms:\n${stderr}`)), START_TIMEOUT_MS);
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
      const m = stderr.replace(/\x1b\[[0-9;]*m/g, '').match(/listening on http:\/\/[^\s:]+:(\d+)/);
      if (m) {
        clearTimeout(timer);
        done(Number(m[1]));
      }
    });
    child.once('error', (err) => {
      clearTimeout(timer);
      fail(err);
    });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      fail(new Error(`switchboard exited (code ${code}, signal ${signal}) before listening:\n${stderr}`));
    });
  });

  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      process.kill(child.pid, 'SIGTERM');
      let timer;
      const late = new Promise((r) => {
        timer = setTimeout(r, STOP_TIMEOUT_MS, 'timeout');
      });
      if ((await Promise.race([exited, late])) === 'timeout') {
        process.kill(child.pid, 'SIGKILL');
      }
      clearTimeout(timer);
    }
    await exited;
  };
  return { port: actualPort, pid: child.pid, logs: () => stderr, stop };
}

/** A static server on 127.0.0.1 answering every GET with `html()`; resolves with its port. */
export async function servePage(html) {
  const server = createServer((req, res) => {
    if (req.url === '/favicon.ico') {
      res.writeHead(204).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    res.end(html());
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { port: server.address().port, close: () => new Promise((r) => server.close(r)) };
}

/** POST /api/broadcast with the app secret. */
export async function broadcast(sbPort, secret, body) {
  const res = await fetch(`http://127.0.0.1:${sbPort}/api/broadcast`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-app-key': secret },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}
