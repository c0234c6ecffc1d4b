// Push notifications as Hestia's clients get them: users register an FCM token and a browser
// Web Push subscription with `fetch`, and a message to a recipient without a live socket reaches
// a local FCM receiver (which checks the service account's RS256 assertion and the access token)
// and a local Web Push endpoint (which checks VAPID), where node's crypto decrypts it with the
// subscription's keys; a do_not_disturb recipient, the sender and a recipient with a live
// socket (socket.io-client) get nothing.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';

import { io } from 'socket.io-client';

import { startServer } from './support/server.mjs';
import { browserKeys, startPushReceiver } from './support/push.mjs';
import { WAIT_MS, waitFor } from './support/helpers.mjs';

let server;
let receiver;
let base;

before(async () => {
  receiver = await startPushReceiver();
  server = await startServer({
    env: {
      SWITCHBOARD_PUSH_FCM_SERVICE_ACCOUNT: receiver.serviceAccount,
      SWITCHBOARD_PUSH_FCM_BASE_URL: receiver.base,
      SWITCHBOARD_PUSH_ALLOW_LOOPBACK_HTTP: 'true',
    },
  });
  base = `http://127.0.0.1:${server.port}`;
});

after(async () => {
  await server?.stop();
  await receiver?.close();
});

async function api(method, path, token, body) {
  const headers = { 'Content-Type': 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  const res = await fetch(`${base}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

async function register(username) {
  const { status, body } = await api('POST', '/auth/register', null, { username, password: 'password-123' });
  assert.equal(status, 201);
  return { id: body.user.id, token: body.token, username };
}

/** Registers a phone (FCM token) and a browser subscription for `user`; returns the browser. */
async function devices(user) {
  const fcm = await api('PATCH', '/users/fcm-token', user.token, { token: `${user.username}-phone` });
  assert.deepEqual(fcm, { status: 200, body: { success: true } });
  const browser = browserKeys();
  // What `PushSubscription.toJSON()` gives.
  const subscription = { endpoint: receiver.endpoint(user.username), expirationTime: null, keys: browser.keys };
  const web = await api('PATCH', '/users/web-push', user.token, subscription);
  assert.deepEqual(web, { status: 200, body: { success: true } });
  return browser;
}

/** The next `n` pushes, sorted by device ("<name>" for Web Push, "<name>-phone" for FCM). */
async function pushes(n, browsers) {
  const got = [];
  for (let i = 0; i < n; i += 1) {
    const item = await receiver.next();
    if (item.kind === 'fcm') got.push({ device: item.message.token, fcm: item.message });
    else got.push({ device: item.id, payload: browsers[item.id].decrypt(item.body), vapidKey: item.vapidKey });
  }
  return got.sort((a, b) => a.device.localeCompare(b.device));
}

test('a group message reaches offline members through FCM and Web Push, decrypted with their keys', async () => {
  const [ann, bob, cat] = [await register('ann'), await register('bob'), await register('cat')];
  const browsers = { ann: await devices(ann), bob: await devices(bob), cat: await devices(cat) };
  const { body: vapid } = await api('GET', '/users/web-push/vapid-public-key');
  assert.equal(Buffer.from(vapid.publicKey, 'base64url').length, 65, 'an uncompressed P-256 point');

  const group = await api('POST', '/groups', ann.token, { name: 'Hearth' });
  assert.equal(group.status, 201);
  for (const member of [bob, cat]) {
    assert.equal((await api('POST', `/groups/${group.body.id}/members/${member.id}`, ann.token)).status, 201);
  }
  assert.equal((await api('PATCH', '/users/status', cat.token, { status: 'do_not_disturb' })).status, 200);

  const sent = await api('POST', `/groups/${group.body.id}/messages`, ann.token, { content: 'dinner at eight' });
  assert.equal(sent.status, 201);
  const got = await pushes(2, browsers);
  assert.deepEqual(got.map((p) => p.device), ['bob', 'bob-phone'], 'bob only: not the sender, not cat (do_not_disturb)');
  const [web, phone] = got;
  assert.equal(web.vapidKey, vapid.publicKey, 'signed with the key web clients subscribe with');
  assert.deepEqual(web.payload, {
    title: 'ann in Hearth',
    body: 'dinner at eight',
    data: {
      type: 'group',
      messageId: sent.body.id,
      senderId: ann.id,
      senderUsername: 'ann',
      groupId: group.body.id,
      groupName: 'Hearth',
    },
  });
  assert.deepEqual(phone.fcm.notification, { title: 'ann in Hearth', body: 'dinner at eight' });
  assert.equal(phone.fcm.data.groupId, String(group.body.id), 'FCM data values are strings');
  await receiver.quiet(500);
  assert.equal(receiver.tokenCalls(), 1, 'one access token, bought with the assertion');
});

test('bad registrations get 400 with an error, and no token gets 401', async () => {
  const dan = await register('dan');
  assert.deepEqual(await api('PATCH', '/users/fcm-token', null, { token: 'x' }), {
    status: 401,
    body: { error: 'No token provided' },
  });
  assert.deepEqual(await api('PATCH', '/users/fcm-token', dan.token, {}), {
    status: 400,
    body: { error: 'Missing userId or token' },
  });
  const { keys } = browserKeys();
  const http = await api('PATCH', '/users/web-push', dan.token, { endpoint: 'http://push.example.com/x', keys });
  assert.equal(http.status, 400);
  assert.match(http.body.error, /https/);
  const badKeys = await api('PATCH', '/users/web-push', dan.token, {
    endpoint: 'https://push.example.com/x',
    keys: { p256dh: 'AAAA', auth: keys.auth },
  });
  assert.equal(badKeys.status, 400);
  assert.match(badKeys.body.error, /p256dh/);
});

/** A connected chat socket of `user`. */
async function connect(user) {
  const socket = io(server.url, { forceNew: true, reconnection: false, auth: { token: user.token } });
  await waitFor(socket, 'connect');
  return socket;
}

/** Polls the user's status until it is `status` (the server has seen the sockets come or go). */
async function statusBecomes(user, status) {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const { body } = await api('GET', `/users/by-id/${user.id}`);
    if (body.status === status) return;
    if (Date.now() > deadline) throw new Error(`${user.username} never became ${status}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('a DM over the socket is pushed to a recipient who is offline, and not to one who is online', async () => {
  const [eve, fay] = [await register('eve'), await register('fay')];
  const asked = await api('POST', `/friends/request/${fay.id}`, eve.token);
  assert.equal(asked.status, 200);
  assert.equal((await api('POST', `/friends/accept/${eve.id}`, fay.token)).status, 200);
  const browsers = { fay: await devices(fay) };
  const eveSocket = await connect(eve);
  try {
    // fay has no socket: her phone and browser hear of it.
    const echoed = waitFor(eveSocket, 'newDM', WAIT_MS, (m) => m.content === 'are you there?');
    eveSocket.emit('sendDM', { toId: fay.id, content: 'are you there?' });
    const message = await echoed;
    const got = await pushes(2, browsers);
    assert.deepEqual(got.map((p) => p.device), ['fay', 'fay-phone']);
    assert.deepEqual(got[0].payload, {
      title: 'eve',
      body: 'are you there?',
      data: { type: 'dm', messageId: message.id, senderId: eve.id, senderUsername: 'eve', recipientId: fay.id },
    });
    assert.equal(got[1].fcm.data.messageId, String(message.id));

    // fay online: the socket gets it, nothing is pushed.
    const faySocket = await connect(fay);
    await statusBecomes(fay, 'active');
    const live = waitFor(faySocket, 'newDM', WAIT_MS, (m) => m.content === 'now you are');
    eveSocket.emit('sendDM', { toId: fay.id, content: 'now you are' });
    await live;
    await receiver.quiet(500);

    // Gone again: pushed again.
    faySocket.disconnect();
    await statusBecomes(fay, 'offline');
    eveSocket.emit('sendDM', { toId: fay.id, content: 'and gone' });
    const again = await pushes(2, browsers);
    assert.deepEqual(again.map((p) => p.device), ['fay', 'fay-phone']);
    assert.equal(again[0].payload.body, 'and gone');
  } finally {
    eveSocket.disconnect();
  }
});
