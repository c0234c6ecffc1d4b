// Push-Alt's clients against Switchboard: the official socket.io-client 4.8 joining channels at
// `/ws` with a channel token (over polling, over WebSocket, and polling upgraded), the `message`
// relay and its limits, emits with `app_key` and with a Pusher signature, the admin API as the
// Push-Alt webapp drives it, and one channel space shared with pusher-js and Notif sockets.

import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';

import { io } from 'socket.io-client';
import WebSocket from 'ws';

import { startServer } from './support/server.mjs';
import { connectedClient, disconnectAll, serverSdk, subscribed, uid, withTimeout } from './support/helpers.mjs';

/** POSTs (or `method`s) JSON to `path`; resolves with the status and the parsed body. */
async function call(server, path, body, { method = 'POST', headers = {} } = {}) {
  const res = await fetch(server.url + path, {
    method,
    headers: { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: res.status, body: json };
}

/** A channel token from `POST /api/channel/auth`, as an app's backend gets one. */
async function channelToken(server, channel, { appId = server.appId, appKey = server.secret, expires } = {}) {
  const body = { app_id: appId, app_key: appKey, channel_name: channel };
  if (expires !== undefined) body.expires_in_seconds = expires;
  const res = await call(server, '/api/channel/auth', body);
  assert.equal(res.status, 200, JSON.stringify(res.body));
  const m = /^workspace:(\d+):(.*):message$/.exec(res.body.message_listen_name);
  assert.ok(m, `message_listen_name ${res.body.message_listen_name}`);
  return { token: res.body.token, workspace: Number(m[1]), listen: res.body.message_listen_name };
}

/** `POST /api/message/emit` with the app secret as `app_key`. */
function emit(server, channel, body, { appId = server.appId, appKey = server.secret } = {}) {
  return call(server, '/api/message/emit', { app_id: appId, app_key: appKey, channel_name: channel, body });
}

/** The Pusher-style signed query over `path` (see docs/migrating-from-push-alt.md). */
function signedQuery(server, path, body) {
  const params = {
    auth_key: server.key,
    auth_timestamp: String(Math.floor(Date.now() / 1000)),
    auth_version: '1.0',
    body_md5: createHash('md5').update(body).digest('hex'),
  };
  const query = Object.keys(params)
    .sort()
    .map((k) => `${k}=${params[k]}`)
    .join('&');
  const signature = createHmac('sha256', server.secret).update(`POST\n${path}\n${query}`).digest('hex');
  return `${query}&auth_signature=${signature}`;
}

/** A socket.io-client socket on Push-Alt's path, as its webapp makes one. */
function sio(server, options = {}) {
  return io(server.url, { path: '/ws', forceNew: true, reconnection: false, ...options });
}

/** Emits `join_channel` and resolves with the `joined` or `error` that answers it. */
function join(socket, token, channel = 'ignored') {
  return withTimeout(
    new Promise((resolve) => {
      const done = (event) => (data) => {
        socket.off('joined', onJoined);
        socket.off('error', onError);
        resolve({ event, data });
      };
      const onJoined = done('joined');
      const onError = done('error');
      socket.once('joined', onJoined);
      socket.once('error', onError);
      socket.emit('join_channel', { token, channel_name: channel });
    }),
    5_000,
    'joined or error',
  );
}

/** Records every event a socket.io-client socket receives. */
function record(socket) {
  const seen = [];
  socket.onAny((event, ...args) => seen.push({ event, args }));
  return seen;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Waits until `predicate()` holds, polling, or fails after `ms`. */
async function until(predicate, ms = 5_000, label = 'condition') {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${label}`);
    await sleep(20);
  }
}

describe('socket.io-client against the Push-Alt surface', () => {
  let server;
  const sockets = [];
  const pushers = [];
  const socket = (options) => {
    const s = sio(server, options);
    sockets.push(s);
    return s;
  };

  before(async () => {
    server = await startServer();
  });
  afterEach(() => {
    for (const s of sockets.splice(0)) s.disconnect();
    disconnectAll(pushers.splice(0));
  });
  after(async () => {
    await server?.stop();
  });

  for (const [name, transports] of [
    ['polling only', ['polling']],
    ['WebSocket only', ['websocket']],
  ]) {
    test(`joins over ${name} and receives an emit as workspace:<n>:<channel>:message`, async () => {
      const channel = uid('orders');
      const { token, workspace, listen } = await channelToken(server, channel);
      const s = socket({ transports });
      await withTimeout(new Promise((r) => s.once('connect', r)), 5_000, 'connect');
      const joined = await join(s, token, channel);
      assert.deepEqual(joined, { event: 'joined', data: { message: `Connected to ${channel} in workspace ${workspace}` } });
      const got = new Promise((r) => s.once(listen, r));
      const res = await emit(server, channel, { order: 7, note: 'ünïcode' });
      assert.deepEqual(res, { status: 200, body: { success: true, message: 'Message emitted to connected clients' } });
      assert.deepEqual(await withTimeout(got, 5_000, listen), { order: 7, note: 'ünïcode' });
      assert.equal(s.io.engine.transport.name, transports[0]);
    });
  }

  test('polling upgrades to WebSocket and the joined socket keeps receiving', async () => {
    const channel = uid('up');
    const { token, listen } = await channelToken(server, channel);
    const s = socket();
    // The engine opens on polling; whether the upgrade finishes before or after the CONNECT
    // answer is a race the protocol leaves open (socket.io-client emits `connect` a tick late).
    const opened = withTimeout(new Promise((r) => s.io.once('open', () => r(s.io.engine.transport.name))), 5_000, 'open');
    const upgraded = withTimeout(
      new Promise((r) => s.io.once('open', () => s.io.engine.once('upgrade', r))),
      5_000,
      'upgrade',
    );
    assert.equal(await opened, 'polling');
    await withTimeout(new Promise((r) => (s.connected ? r() : s.once('connect', r))), 5_000, 'connect');
    assert.equal((await join(s, token)).event, 'joined');
    await upgraded;
    assert.equal(s.io.engine.transport.name, 'websocket');
    const got = new Promise((r) => s.once(listen, r));
    await emit(server, channel, 'after the upgrade');
    assert.equal(await withTimeout(got, 5_000, listen), 'after the upgrade');
  });

  test('one socket joins several channels and gets each one’s events', async () => {
    const a = await channelToken(server, uid('a'));
    const b = await channelToken(server, uid('b'));
    const s = socket({ transports: ['websocket'] });
    assert.equal((await join(s, a.token)).event, 'joined');
    assert.equal((await join(s, b.token)).event, 'joined');
    const seen = record(s);
    const channelOf = (listen) => listen.split(':')[2];
    await emit(server, channelOf(a.listen), 1);
    await emit(server, channelOf(b.listen), 2);
    await until(() => seen.length >= 2, 5_000, 'both events');
    await sleep(200);
    assert.deepEqual(
      seen.map((e) => [e.event, e.args[0]]),
      [
        [a.listen, 1],
        [b.listen, 2],
      ],
    );
  });

  for (const [name, token] of [
    ['a forged token', 'f'.repeat(64)],
    ['an empty token', ''],
    ['a token that is not a string', { $ne: null }],
  ]) {
    test(`${name} gets error, then the server disconnects the socket`, async () => {
      const s = socket({ transports: ['websocket'] });
      const disconnected = new Promise((r) => s.once('disconnect', r));
      const answer = await join(s, token);
      assert.deepEqual(answer, { event: 'error', data: { message: 'Invalid token or channel' } });
      assert.equal(await withTimeout(disconnected, 5_000, 'disconnect'), 'io server disconnect');
    });
  }

  test('a join with no payload at all is refused, and the server stays up', async () => {
    const s = socket({ transports: ['websocket'] });
    const answer = withTimeout(new Promise((r) => s.once('error', r)), 5_000, 'error');
    s.emit('join_channel');
    assert.equal(typeof (await answer).message, 'string');
    const health = await fetch(`${server.url}/health`);
    assert.equal(health.status, 200);
  });

  test('a token expires to the second', async () => {
    const channel = uid('exp');
    const { token } = await channelToken(server, channel, { expires: 1 });
    const first = socket({ transports: ['websocket'] });
    assert.equal((await join(first, token)).event, 'joined');
    await sleep(2_100);
    const late = socket({ transports: ['websocket'] });
    assert.deepEqual(await join(late, token), { event: 'error', data: { message: 'Invalid token or channel' } });
  });

  test('a socket rejoins with the same token on every reconnect, as the webapp does', async () => {
    const channel = uid('re');
    const { token, listen } = await channelToken(server, channel);
    const s = socket({ transports: ['websocket'], reconnection: true, reconnectionDelay: 50, reconnectionDelayMax: 100 });
    const joins = [];
    s.on('connect', () => s.emit('join_channel', { token, channel_name: channel }));
    s.on('joined', (data) => joins.push(data));
    await until(() => joins.length === 1, 5_000, 'first join');
    // The transport drops (a network change): socket.io-client reconnects and joins again.
    s.io.engine.close();
    await until(() => joins.length === 2, 5_000, 'the join after the reconnect');
    const seen = record(s);
    await emit(server, channel, 'once');
    await until(() => seen.length >= 1, 5_000, 'the emit');
    await sleep(200);
    assert.deepEqual(seen, [{ event: listen, args: ['once'] }]);
  });

  test('message is relayed to every socket of the first channel, sender included', async () => {
    const channel = uid('relay');
    const { token } = await channelToken(server, channel);
    const other = await channelToken(server, uid('elsewhere'));
    const a = socket({ transports: ['websocket'] });
    const b = socket({ transports: ['polling'] });
    const c = socket({ transports: ['websocket'] });
    for (const s of [a, b]) assert.equal((await join(s, token)).event, 'joined');
    assert.equal((await join(c, other.token)).event, 'joined');
    // a's first channel is `channel`: joining another one later does not move its relay.
    assert.equal((await join(a, other.token)).event, 'joined');
    const seen = [a, b, c].map((s) => {
      const got = [];
      s.on('message', (m) => got.push(m));
      return got;
    });
    a.emit('message', { text: 'hello', n: 1 });
    await until(() => seen[0].length === 1 && seen[1].length === 1, 5_000, 'the relay');
    await sleep(200);
    assert.deepEqual(seen, [[{ text: 'hello', n: 1 }], [{ text: 'hello', n: 1 }], []]);
  });

  test('a socket that joined nothing relays nothing', async () => {
    const s = socket({ transports: ['websocket'] });
    await withTimeout(new Promise((r) => s.once('connect', r)), 5_000, 'connect');
    const got = [];
    s.on('message', (m) => got.push(m));
    s.emit('message', 'to nobody');
    await sleep(200);
    assert.deepEqual(got, []);
    assert.equal(s.connected, true);
  });

  test('the relay refuses a message over 10 KB with error and keeps the socket', async () => {
    const channel = uid('big');
    const { token } = await channelToken(server, channel);
    const a = socket({ transports: ['websocket'] });
    const b = socket({ transports: ['websocket'] });
    for (const s of [a, b]) assert.equal((await join(s, token)).event, 'joined');
    const got = [];
    b.on('message', (m) => got.push(m));
    const refused = withTimeout(new Promise((r) => a.once('error', r)), 5_000, 'error');
    a.emit('message', 'x'.repeat(11 * 1024));
    assert.equal(typeof (await refused).message, 'string');
    a.emit('message', 'small');
    await until(() => got.length === 1, 5_000, 'the small relay');
    assert.deepEqual(got, ['small']);
    assert.equal(a.connected, true);
  });

  test('the relay passes at most 10 messages a second; the excess gets error', async () => {
    const channel = uid('rate');
    const { token } = await channelToken(server, channel);
    const a = socket({ transports: ['websocket'] });
    const b = socket({ transports: ['websocket'] });
    for (const s of [a, b]) assert.equal((await join(s, token)).event, 'joined');
    const got = [];
    const errors = [];
    b.on('message', (m) => got.push(m));
    a.on('error', (e) => errors.push(e));
    for (let i = 0; i < 25; i += 1) a.emit('message', i);
    await until(() => got.length + errors.length >= 25, 5_000, 'every message relayed or refused');
    await sleep(200);
    assert.ok(got.length >= 1 && got.length <= 11, `relayed ${got.length}`);
    assert.ok(errors.length >= 14, `refused ${errors.length}`);
    assert.deepEqual(got, [...got].sort((x, y) => x - y), 'in order');
    // The next second has room again.
    await sleep(1_100);
    a.emit('message', 'later');
    await until(() => got.includes('later'), 5_000, 'a relay in the next second');
  });

  test('emit needs app_key or a Pusher signature, and says which is wrong', async () => {
    const channel = uid('auth');
    const path = '/api/message/emit';
    const unsigned = await call(server, path, { app_id: server.appId, channel_name: channel, body: 'x' });
    assert.deepEqual(unsigned, { status: 401, body: { success: false, message: 'app_key required: send the workspace app_key' } });
    const wrong = await emit(server, channel, 'x', { appKey: 'not-the-secret' });
    assert.deepEqual(wrong, { status: 401, body: { success: false, message: 'Invalid workspace or credentials' } });
    const missing = await call(server, path, { app_id: server.appId, app_key: server.secret, channel_name: channel });
    assert.equal(missing.status, 400);

    const { token, listen } = await channelToken(server, channel);
    const s = socket({ transports: ['websocket'] });
    assert.equal((await join(s, token)).event, 'joined');
    const seen = record(s);
    const body = JSON.stringify({ app_id: server.appId, channel_name: channel, body: { signed: true } });
    const signed = await fetch(`${server.url}${path}?${signedQuery(server, path, body)}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    });
    assert.equal(signed.status, 200, await signed.text());
    const forged = await fetch(`${server.url}${path}?${signedQuery(server, path, body).replace(/auth_signature=[0-9a-f]+/, `auth_signature=${'0'.repeat(64)}`)}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    });
    assert.equal(forged.status, 401);
    await until(() => seen.length >= 1, 5_000, 'the signed emit');
    await sleep(200);
    assert.deepEqual(seen, [{ event: listen, args: [{ signed: true }] }]);
  });

  test('one channel space: pusher-js, Notif and socket.io-client each get a trigger, a broadcast and an emit once', async () => {
    const channel = uid('orders');
    const { token, workspace } = await channelToken(server, channel);

    const pusher = await connectedClient(server);
    pushers.push(pusher);
    const [pusherChannel] = await subscribed(pusher, channel);
    const pusherSeen = [];
    pusherChannel.bind_global((event, data) => {
      if (!event.startsWith('pusher:')) pusherSeen.push([event, data]);
    });

    const notif = new WebSocket(`ws://127.0.0.1:${server.port}/ws?api_key=${server.key}`);
    const notifSeen = [];
    const notifReady = new Promise((resolve, reject) => {
      notif.on('error', reject);
      notif.on('message', (raw) => {
        const frame = JSON.parse(raw.toString());
        if (frame.event === 'connection_established') {
          notif.send(JSON.stringify({ event: 'subscribe', data: { channel } }));
        } else if (frame.event === 'pusher_internal:subscription_succeeded') {
          resolve();
        } else if (frame.channel === channel) {
          notifSeen.push([frame.event, frame.data]);
        }
      });
    });
    await withTimeout(notifReady, 5_000, 'the Notif subscription');

    const s = socket();
    assert.equal((await join(s, token)).event, 'joined');
    const sioSeen = record(s);

    try {
      await serverSdk(server).trigger(channel, 'shipped', { n: 1 });
      const broadcast = await call(server, '/api/broadcast', { channel, event: 'packed', data: { n: 2 } }, { headers: { 'x-app-key': server.secret } });
      assert.equal(broadcast.status, 200, JSON.stringify(broadcast.body));
      assert.equal((await emit(server, channel, { n: 3 })).status, 200);

      await until(() => pusherSeen.length >= 3 && notifSeen.length >= 3 && sioSeen.length >= 3, 5_000, 'three events on each transport');
      await sleep(300);
      assert.deepEqual(pusherSeen, [
        ['shipped', { n: 1 }],
        ['packed', { n: 2 }],
        ['message', { n: 3 }],
      ]);
      assert.deepEqual(notifSeen, [
        ['shipped', { n: 1 }],
        ['packed', { n: 2 }],
        ['message', { n: 3 }],
      ]);
      const prefix = `workspace:${workspace}:${channel}:`;
      assert.deepEqual(sioSeen, [
        { event: `${prefix}shipped`, args: [{ n: 1 }] },
        { event: `${prefix}packed`, args: [{ n: 2 }] },
        { event: `${prefix}message`, args: [{ n: 3 }] },
      ]);
    } finally {
      notif.close();
    }
  });
});

describe('the Push-Alt admin API end to end', () => {
  let server;
  before(async () => {
    server = await startServer();
  });
  after(async () => {
    await server?.stop();
  });

  test('setup, login, a workspace of our own, its channel and emit, deactivation, refresh and logout', async () => {
    const m = /Setup token[^:]*: (\S+)/.exec(server.stdout());
    assert.ok(m, `the setup token is printed at first start:\n${server.stdout()}`);
    const admin = { name: 'Ada', email: 'ada@example.com', password: 'correct horse battery' };
    const setup = await call(server, '/api/setup/complete', {
      app_name: 'Push',
      timezone: 'UTC',
      ...admin,
      password_confirm: admin.password,
      setup_token: m[1],
    });
    assert.equal(setup.status, 200, JSON.stringify(setup.body));
    assert.equal(setup.body.success, true);
    assert.ok(!JSON.stringify(setup.body).includes(admin.password), 'the password is never echoed');
    const again = await call(server, '/api/setup/complete', { app_name: 'Push', timezone: 'UTC', ...admin, password_confirm: admin.password, setup_token: m[1] });
    assert.equal(again.status, 400);

    const login = await call(server, '/api/auth/login', { email: admin.email, password: admin.password });
    assert.equal(login.status, 200, JSON.stringify(login.body));
    const { access_token: access, refresh_token: refresh, type } = login.body.data;
    assert.equal(type, 'Bearer');
    const bearer = { authorization: `Bearer ${access}` };

    const noToken = await call(server, '/api/workspaces', undefined, { method: 'GET' });
    assert.deepEqual(noToken, { status: 401, body: { success: false, message: 'No token provided' } });
    const badToken = await call(server, '/api/workspaces', undefined, { method: 'GET', headers: { authorization: 'Bearer nope' } });
    assert.equal(badToken.status, 401);

    const profile = await call(server, '/api/auth/profile', undefined, { method: 'GET', headers: bearer });
    assert.equal(profile.status, 200);
    assert.equal(profile.body.data.email, admin.email);

    const appId = uid('shop');
    const appKey = `k-${uid('secret')}-0123456789`;
    const created = await call(server, '/api/workspaces', { name: 'Shop', description: 'orders', app_id: appId, app_key: appKey }, { headers: bearer });
    assert.equal(created.status, 200, JSON.stringify(created.body));
    const row = created.body.data;
    assert.equal(row.app_id, appId);
    assert.ok(!JSON.stringify(created.body).includes(appKey), 'the secret is never shown');
    const taken = await call(server, '/api/workspaces', { name: 'Again', app_id: appId, app_key: appKey }, { headers: bearer });
    assert.equal(taken.status, 409);

    const channel = uid('orders');
    const { token, listen } = await channelToken(server, channel, { appId, appKey });
    assert.equal(listen, `workspace:${row.id}:${channel}:message`);
    const s = sio(server, { transports: ['polling', 'websocket'] });
    try {
      assert.deepEqual(await join(s, token, channel), { event: 'joined', data: { message: `Connected to ${channel} in workspace ${row.id}` } });
      const got = new Promise((r) => s.once(listen, r));
      assert.equal((await emit(server, channel, 'hi', { appId, appKey })).status, 200);
      assert.equal(await withTimeout(got, 5_000, listen), 'hi');

      const listed = await call(server, '/api/channel/channels', undefined, { method: 'GET', headers: bearer });
      assert.equal(listed.status, 200);
      assert.ok(listed.body.data.some((r) => r.channel_name === channel));
      assert.ok(!JSON.stringify(listed.body).includes(token), 'tokens are never listed');

      const off = await call(server, `/api/workspaces/${row.id}`, { status: 'deactivated' }, { method: 'PUT', headers: bearer });
      assert.equal(off.status, 200, JSON.stringify(off.body));
      const refused = await emit(server, channel, 'no', { appId, appKey });
      assert.deepEqual(refused, { status: 401, body: { success: false, message: 'Workspace Deactivated' } });
    } finally {
      s.disconnect();
    }

    const refreshed = await call(server, '/api/auth/refresh', { refresh_token: refresh });
    assert.equal(refreshed.status, 200, JSON.stringify(refreshed.body));
    assert.equal(typeof refreshed.body.data.access_token, 'string');
    const logout = await call(server, '/api/auth/logout', { refresh_token: refresh });
    assert.equal(logout.status, 200);
    const after = await call(server, '/api/auth/refresh', { refresh_token: refresh });
    assert.equal(after.status, 401);
  });
});
