// Starts and stops a real Switchboard server for the end-to-end tests.
//
// The binary comes from $SWITCHBOARD_BIN, or ../../../target/debug/switchboard relative to this
// file (build it first with `cargo build` at the repository root). Every server gets its own
// temporary data directory and an ephemeral port; the port is read from the
// "listening on http://127.0.0.1:<port>" line the server logs to stderr.

import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 10_000;

export const binaryPath = () =>
  process.env.SWITCHBOARD_BIN
    ? resolve(process.env.SWITCHBOARD_BIN)
    : resolve(here, '..', '..', '..', 'target', 'debug', 'switchboard');

// Servers still running when the process exits (a crashed test) are sent SIGTERM by PID.
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

let counter = 0;

/**
 * @param {{ env?: Record<string, string>, host?: string }} [options]
 * @returns {Promise<{ port: number, host: string, appId: string, key: string, secret: string,
 *   url: string, logs: () => string, exited: Promise<{code: number|null, signal: string|null}>,
 *   stop: () => Promise<{code: number|null, signal: string|null}> }>}
 */
export async function startServer({ env = {}, host = '127.0.0.1' } = {}) {
  const bin = binaryPath();
  if (!existsSync(bin)) {
    throw new Error(`switchboard binary not found at ${bin}: run \`cargo build\` at the repository root or set SWITCHBOARD_BIN`);
  }
  counter += 1;
  const appId = env.SWITCHBOARD_APP_ID ?? `app-${process.pid}-${counter}`;
  const key = env.SWITCHBOARD_APP_KEY ?? `key-${process.pid}-${counter}`;
  const secret = env.SWITCHBOARD_APP_SECRET ?? `secret-${process.pid}-${counter}-0123456789abcdef`;
  const dataDir = mkdtempSync(join(tmpdir(), 'switchboard-js-'));

  const child = spawn(bin, ['serve', '--port', '0', '--bind', host, '--data-dir', dataDir], {
    env: {
      ...process.env,
      LOG_LEVEL: 'info',
      SWITCHBOARD_APP_ID: appId,
      SWITCHBOARD_APP_KEY: key,
      SWITCHBOARD_APP_SECRET: secret,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);

  let stderr = '';
  let stdout = '';
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stdout.on('data', (chunk) => {
    stdout += chunk;
  });

  const exited = new Promise((resolveExit) => {
    child.once('exit', (code, signal) => {
      running.delete(child);
      resolveExit({ code, signal });
    });
  });
  const cleanup = () => rmSync(dataDir, { recursive: true, force: true });

  let port;
  try {
    port = await new Promise((resolvePort, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`switchboard did not print its listening line within ${START_TIMEOUT_MS} ms.\nstderr:\n${stderr}\nstdout:\n${stdout}`));
      }, START_TIMEOUT_MS);
      const onData = (chunk) => {
        stderr += chunk;
        // Strip ANSI colours in case the log format ever colours a pipe.
        const plain = stderr.replace(/\x1b\[[0-9;]*m/g, '');
        const m = plain.match(/listening on http:\/\/[^\s:]+:(\d+)/);
        if (m) {
          clearTimeout(timer);
          resolvePort(Number(m[1]));
        }
      };
      child.stderr.on('data', onData);
      child.once('error', (err) => {
        clearTimeout(timer);
        reject(new Error(`could not start ${bin}: ${err.message}`));
      });
      exited.then(({ code, signal }) => {
        clearTimeout(timer);
        reject(new Error(`switchboard exited (code ${code}, signal ${signal}) before listening.\nstderr:\n${stderr}\nstdout:\n${stdout}`));
      });
    });
  } catch (err) {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
    cleanup();
    throw err;
  }
  // The stderr listener above keeps collecting logs for diagnostics.

  let stopping;
  const stop = () => {
    stopping ??= (async () => {
      if (child.exitCode === null && child.signalCode === null) {
        process.kill(child.pid, 'SIGTERM');
        let timer;
        const timeout = new Promise((r) => {
          timer = setTimeout(r, STOP_TIMEOUT_MS, 'timeout');
        });
        const result = await Promise.race([exited, timeout]);
        clearTimeout(timer);
        if (result === 'timeout') {
          try {
            process.kill(child.pid, 'SIGKILL');
          } catch {
            // exited meanwhile
          }
        }
      }
      const status = await exited;
      cleanup();
      return status;
    })();
    return stopping;
  };

  return {
    port,
    host,
    appId,
    key,
    secret,
    url: `http://${host}:${port}`,
    pid: child.pid,
    logs: () => stderr,
    /** What the server printed on stdout (the default app's credentials, the setup token). */
    stdout: () => stdout,
    exited,
    stop,
  };
}
