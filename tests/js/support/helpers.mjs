// Shared helpers: bounded waits, official-client factories and a raw protocol-7 WebSocket client.
// Every wait here has a timeout, so a missing frame fails the test instead of hanging it.

import Pusher from 'pusher-js';
import PusherServer from 'pusher';
import WebSocket from 'ws';

export const WAIT_MS = 5_000;

/** Rejects with a labelled error when `promise` does not settle within `ms`. */
export function withTimeout(promise, ms = WAIT_MS, label = 'operation') {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${label}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** A promise with its resolve/reject exposed. */
export function deferred() {
  let resolve;
  let reject;
  const promise = new Promise((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/**
 * Resolves with the first `event` emitted by `target` whose payload passes `filter`, within `ms`.
 * `target` is a Node EventEmitter (on/off) or a pusher-js Dispatcher (bind/unbind): a channel,
 * `pusher.connection` or `pusher.user`. Resolves with the first argument of the event.
 */
export function waitFor(target, event, ms = WAIT_MS, filter = () => true) {
  const emitter = typeof target.on === 'function' && typeof target.off === 'function' && typeof target.unbind !== 'function';
  return new Promise((resolve, reject) => {
    const listener = (payload, ...rest) => {
      let ok;
      try {
        ok = filter(payload, ...rest);
      } catch (err) {
        done();
        reject(err);
        return;
      }
      if (ok) {
        done();
        resolve(payload);
      }
    };
    const timer = setTimeout(() => {
      done();
      const name = target.name ? ` on ${target.name}` : '';
      reject(new Error(`timed out after ${ms} ms waiting for "${event}"${name}`));
    }, ms);
    const done = () => {
      clearTimeout(timer);
      if (emitter) target.off(event, listener);
      else target.unbind(event, listener);
    };
    if (emitter) target.on(event, listener);
    else target.bind(event, listener);
  });
}

/** Records every event (name, data) a pusher-js channel emits, for later assertions. */
export function recordChannel(channel) {
  const seen = [];
  channel.bind_global((event, data) => seen.push({ event, data }));
  return seen;
}

/** The official server SDK pointed at `server`. */
export function serverSdk(server, extra = {}) {
  return new PusherServer({
    appId: server.appId,
    key: server.key,
    secret: server.secret,
    host: server.host,
    port: String(server.port),
    useTLS: false,
    ...extra,
  });
}

/**
 * A pusher-js client for `server`, not yet awaited. Channel authorization and user authentication
 * are signed by `sdk` (the app backend's job; Switchboard has no auth endpoint, like Pusher).
 * `presence` is the presence channel_data `{ user_id, user_info }`; `user` is the signin user.
 * `authorize` replaces the whole custom handler (for bad-auth tests).
 */
export function pusherClient(server, { sdk = serverSdk(server), presence, user, authorize, key = server.key, ...options } = {}) {
  return new Pusher(key, {
    wsHost: server.host,
    wsPort: server.port,
    forceTLS: false,
    enabledTransports: ['ws'],
    disableStats: true,
    cluster: 'mt1',
    channelAuthorization: {
      customHandler:
        authorize ??
        ((params, callback) => {
          try {
            const data = params.channelName.startsWith('presence-') ? presence : undefined;
            callback(null, sdk.authorizeChannel(params.socketId, params.channelName, data));
          } catch (err) {
            callback(err, null);
          }
        }),
    },
    userAuthentication: {
      customHandler: (params, callback) => {
        try {
          callback(null, sdk.authenticateUser(params.socketId, user));
        } catch (err) {
          callback(err, null);
        }
      },
    },
    ...options,
  });
}

/** Waits for a pusher-js client to reach `connected`; returns its socket_id. */
export async function connected(client, ms = WAIT_MS) {
  if (client.connection.state !== 'connected') {
    await waitFor(client.connection, 'connected', ms);
  }
  return client.connection.socket_id;
}

/** A connected pusher-js client. */
export async function connectedClient(server, options) {
  const client = pusherClient(server, options);
  try {
    await connected(client);
  } catch (err) {
    client.disconnect();
    throw err;
  }
  return client;
}

/** Subscribes and waits for `pusher:subscription_succeeded`; returns [channel, data]. */
export async function subscribed(client, name, ms = WAIT_MS) {
  const channel = client.subscribe(name);
  const outcome = await waitForAny(channel, ['pusher:subscription_succeeded', 'pusher:subscription_error'], ms);
  if (outcome.event !== 'pusher:subscription_succeeded') {
    throw new Error(`subscription to ${name} failed: ${JSON.stringify(outcome.data)}`);
  }
  return [channel, outcome.data];
}

/** Like waitFor on a pusher-js Dispatcher, for the first of several events: resolves { event, data }. */
export function waitForAny(target, events, ms = WAIT_MS) {
  return new Promise((resolve, reject) => {
    const listeners = events.map((event) => [event, (data) => {
      done();
      resolve({ event, data });
    }]);
    const timer = setTimeout(() => {
      done();
      reject(new Error(`timed out after ${ms} ms waiting for any of ${events.join(', ')}${target.name ? ` on ${target.name}` : ''}`));
    }, ms);
    const done = () => {
      clearTimeout(timer);
      for (const [event, fn] of listeners) target.unbind(event, fn);
    };
    for (const [event, fn] of listeners) target.bind(event, fn);
  });
}

/** Disconnects pusher-js clients, ignoring ones already gone. */
export function disconnectAll(clients) {
  for (const c of clients) {
    try {
      c.disconnect();
    } catch {
      // already disconnected
    }
  }
  clients.length = 0;
}

/**
 * A raw protocol-7 WebSocket client (the `ws` package), recording every parsed frame.
 * `next(filter)` resolves with the first recorded or later frame passing `filter`.
 */
export async function rawClient(server, { key = server.key, query = 'protocol=7&client=js&version=8.4.0', ms = WAIT_MS } = {}) {
  const socket = new WebSocket(`ws://${server.host}:${server.port}/app/${key}?${query}`);
  const frames = [];
  const texts = [];
  socket.on('message', (data, isBinary) => {
    const text = isBinary ? data : data.toString('utf8');
    texts.push(text);
    try {
      frames.push(JSON.parse(text));
    } catch {
      frames.push({ unparsable: text });
    }
    socket.emit('frame', frames[frames.length - 1], text);
  });
  const closed = new Promise((resolve) => socket.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  const errored = new Promise((resolve) => socket.once('error', resolve));
  await withTimeout(
    Promise.race([
      new Promise((resolve) => socket.once('open', resolve)),
      errored.then((e) => {
        throw e;
      }),
    ]),
    ms,
    'raw WebSocket open',
  );
  const next = (filter, waitMs = WAIT_MS, label = 'a matching frame') => {
    const hit = frames.find((f) => filter(f));
    if (hit) return Promise.resolve(hit);
    return waitFor(socket, 'frame', waitMs, (f) => filter(f)).catch((err) => {
      throw new Error(`${err.message} (${label}); frames so far: ${JSON.stringify(frames)}`);
    });
  };
  return {
    socket,
    frames,
    texts,
    closed,
    next,
    send: (event, data, channel) => socket.send(JSON.stringify(channel === undefined ? { event, data } : { event, data, channel })),
    close: () => socket.close(),
  };
}

/** Parses a frame's `data` the way pusher-js does: a JSON string is decoded, anything else kept. */
export function frameData(frame) {
  if (typeof frame.data !== 'string') return frame.data;
  try {
    return JSON.parse(frame.data);
  } catch {
    return frame.data;
  }
}

let unique = 0;
/** A channel-name-safe unique suffix, so tests in one file never share a channel. */
export function uid(prefix = 'c') {
  unique += 1;
  return `${prefix}-${process.pid}-${Date.now().toString(36)}-${unique}`;
}
