// Hestia's clients against Switchboard (SPEC §6, CONTRACTS §3): users register over REST with
// `fetch`, befriend each other and make groups, and talk over the official socket.io-client 4.8
// at `/socket.io`: DMs live and in history, group messages from the socket and from REST,
// member changes and their events, statuses, and account deletion.
//
// The server uses `DATABASE_URL` from the environment when it is set: scripts/test.sh runs this
// file on SQLite, PostgreSQL and MariaDB (a fresh database each time). Usernames carry a random
// suffix, so a run never meets an earlier one's users.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';

import { io } from 'socket.io-client';

import { startServer } from './support/server.mjs';
import { WAIT_MS, waitFor, withTimeout } from './support/helpers.mjs';

let server;
const sockets = new Set();

before(async () => {
  server = await startServer();
});

after(async () => {
  for (const socket of sockets) socket.disconnect();
  await server?.stop();
});

/** A REST call; resolves with the status and the parsed body (text when not JSON). */
async function call(path, { method = 'GET', token, body } = {}) {
  const headers = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(server.url + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let json = text;
  try {
    json = JSON.parse(text);
  } catch {
    // not JSON (204)
  }
  return { status: res.status, body: json };
}

const suffix = randomBytes(3).toString('hex');
let counter = 0;

/** Registers a new user: `{id, username, token}`. */
async function register(name) {
  counter += 1;
  const username = `${name}${counter}_${suffix}`;
  const res = await call('/auth/register', { method: 'POST', body: { username, password: 'correct horse battery' } });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  assert.equal(res.body.user.username, username);
  assert.equal(typeof res.body.user.id, 'number');
  return { id: res.body.user.id, username, token: res.body.token };
}

/** Makes `a` and `b` friends through a request and its acceptance. */
async function befriend(a, b) {
  const asked = await call(`/friends/request/${b.id}`, { method: 'POST', token: a.token });
  assert.equal(asked.status, 200, JSON.stringify(asked.body));
  const requests = await call('/friends/requests', { token: b.token });
  assert.deepEqual(requests.body, [{ id: a.id, username: a.username }]);
  const accepted = await call(`/friends/accept/${a.id}`, { method: 'POST', token: b.token });
  assert.deepEqual(accepted.body, { success: true });
}

/** A connected socket of `user` (token in `auth`, or in the query when `viaQuery`). */
async function connect(user, { viaQuery = false, transports } = {}) {
  const options = { forceNew: true, reconnection: false, transports };
  if (viaQuery) options.query = { token: user.token };
  else options.auth = { token: user.token };
  const socket = io(server.url, options);
  sockets.add(socket);
  const events = [];
  socket.onAny((event, data) => events.push({ event, data }));
  socket.recorded = events;
  await waitFor(socket, 'connect');
  // Its events are handled once it has joined its rooms: an answer shows it has.
  assert.equal(typeof (await ask(socket, 'getDMHistory', { otherId: user.id })).error, 'string');
  return socket;
}

/** Resolves with the next `event` on `socket` whose payload passes `filter`. */
function next(socket, event, filter = () => true) {
  return waitFor(socket, event, WAIT_MS, filter);
}

/** Emits with an ack; resolves with the answer. */
function ask(socket, event, payload) {
  return withTimeout(socket.emitWithAck(event, payload), WAIT_MS, `${event} ack`);
}

/** Polls `GET /users/by-id/{id}` until its status is `status`. */
async function statusBecomes(user, status) {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const res = await call(`/users/by-id/${user.id}`);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    if (res.body.status === status) return;
    if (Date.now() > deadline) assert.fail(`status of ${user.username} stayed ${res.body.status}, not ${status}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

function closeSocket(socket) {
  socket.disconnect();
  sockets.delete(socket);
}

const MESSAGE_KEYS = ['content', 'createdAt', 'id', 'userId', 'username'];

describe('Hestia chat over socket.io-client', () => {
  test('a user registers, reads and edits the profile, and looks others up', async () => {
    const alice = await register('alice');
    const me = await call('/users/me', { token: alice.token });
    assert.equal(me.status, 200);
    assert.equal(me.body.id, alice.id);
    assert.equal(me.body.username, alice.username);
    assert.equal(me.body.status, 'offline');
    const bio = await call('/users/bio', { method: 'PATCH', token: alice.token, body: { bio: 'hello there' } });
    assert.equal(bio.status, 200, JSON.stringify(bio.body));
    assert.equal(bio.body.bio, 'hello there');
    const byName = await call(`/users/by-username/${alice.username}`);
    assert.equal(byName.body.id, alice.id);
    assert.equal(byName.body.bio, 'hello there');
    const status = await call('/auth/status', { token: alice.token });
    assert.deepEqual(status.body, { authenticated: true, user: { id: alice.id, username: alice.username } });
  });

  test('a bad or missing token gets the connection, then error, then the disconnect', async () => {
    for (const options of [{}, { auth: { token: 'not-a-token' } }, { query: { token: 'nope' } }]) {
      const socket = io(server.url, { forceNew: true, reconnection: false, ...options });
      sockets.add(socket);
      const error = next(socket, 'error');
      const disconnected = next(socket, 'disconnect');
      await next(socket, 'connect');
      assert.deepEqual(await error, { error: 'Authentication failed' });
      assert.equal(await disconnected, 'io server disconnect');
      closeSocket(socket);
    }
  });

  test('statuses: active at the first socket, offline when the last one closes', async () => {
    const bob = await register('bob');
    const first = await connect(bob);
    await statusBecomes(bob, 'active');
    const second = await connect(bob, { viaQuery: true, transports: ['polling'] });
    closeSocket(first);
    // Still one socket: stays active.
    await new Promise((r) => setTimeout(r, 100));
    assert.equal((await call(`/users/by-id/${bob.id}`)).body.status, 'active');
    closeSocket(second);
    await statusBecomes(bob, 'offline');
  });

  test('DMs between friends arrive live on every socket of both and are in history, in order', async () => {
    const [amy, ben] = [await register('amy'), await register('ben')];
    await befriend(amy, ben);
    const amySock = await connect(amy);
    const [ben1, ben2] = [await connect(ben), await connect(ben, { transports: ['polling'] })];

    const sent = [next(amySock, 'newDM'), next(ben1, 'newDM'), next(ben2, 'newDM'), next(ben1, 'dmNotification')];
    amySock.emit('sendDM', { toId: ben.id, content: '  hi ben  ' });
    const [own, got1, got2, note] = await Promise.all(sent);
    assert.deepEqual(Object.keys(own).sort(), [...MESSAGE_KEYS, 'recipientId'].sort());
    assert.equal(own.content, 'hi ben', 'trimmed');
    assert.equal(own.userId, amy.id);
    assert.equal(own.username, amy.username);
    assert.equal(own.recipientId, ben.id);
    assert.deepEqual(got1, own);
    assert.deepEqual(got2, own);
    assert.equal(note.id, own.id);
    assert.equal(note.senderId, amy.id);
    assert.equal(note.senderUsername, amy.username);

    // The reply, with the id as a numeric string (Hestia's clients send numbers; strings pass).
    const reply = next(amySock, 'newDM');
    ben2.emit('sendDM', { toId: String(amy.id), content: 'hello amy' });
    assert.equal((await reply).content, 'hello amy');

    const history = await ask(ben1, 'getDMHistory', { otherId: amy.id });
    assert.deepEqual(history.map((m) => m.content), ['hi ben', 'hello amy']);
    assert.ok(history[0].id < history[1].id);
    const limited = await ask(amySock, 'getDMHistory', { otherId: ben.id, limit: 1 });
    assert.deepEqual(limited.map((m) => m.content), ['hello amy'], 'the newest ones');
    const before = await ask(amySock, 'getDMHistory', { otherId: ben.id, before: history[1].id });
    assert.deepEqual(before.map((m) => m.content), ['hi ben']);
    for (const s of [amySock, ben1, ben2]) closeSocket(s);
  });

  test('DMs to strangers, to oneself and malformed ones get error {error}', async () => {
    const [cat, dan] = [await register('cat'), await register('dan')];
    const socket = await connect(cat);
    for (const payload of [
      { toId: dan.id, content: 'not friends' },
      { toId: cat.id, content: 'me' },
      { toId: 1.5, content: 'x' },
      { toId: -3, content: 'x' },
      { toId: 'abc', content: 'x' },
      { toId: dan.id, content: '   ' },
      { toId: dan.id, content: 'x'.repeat(2049) },
      { toId: dan.id },
      'not an object',
    ]) {
      const error = next(socket, 'error');
      socket.emit('sendDM', payload);
      const got = await error;
      assert.equal(typeof got.error, 'string', JSON.stringify(payload));
    }
    const unknown = next(socket, 'error');
    socket.emit('noSuchEvent', {});
    assert.match((await unknown).error, /noSuchEvent/);
    const history = await ask(socket, 'getDMHistory', { otherId: 'x' });
    assert.equal(typeof history.error, 'string');
    assert.ok(!socket.recorded.some((e) => e.event === 'newDM'), 'nothing was sent');
    closeSocket(socket);
  });

  test('groups: roles, members added and removed live, socket and REST messages, history', async () => {
    const [owner, member, outsider] = [await register('own'), await register('mem'), await register('out')];
    const ownerSock = await connect(owner);
    const memberSock = await connect(member);
    const outsiderSock = await connect(outsider);

    const created = next(ownerSock, 'groupCreated');
    const group = await call('/groups', { method: 'POST', token: owner.token, body: { name: `g-${suffix}`, description: 'd' } });
    assert.equal(group.status, 201, JSON.stringify(group.body));
    assert.equal((await created).id, group.body.id);
    const gid = group.body.id;

    // Added: the member's live socket joins the room before memberAdded is published.
    const addedSeenByMember = next(memberSock, 'memberAdded');
    const added = await call(`/groups/${gid}/members/${member.id}`, { method: 'POST', token: owner.token, body: {} });
    assert.equal(added.status, 201, JSON.stringify(added.body));
    assert.equal(added.body.role, 'MEMBER');
    assert.equal((await addedSeenByMember).userId, member.id);

    // A MEMBER cannot manage the group.
    const refused = await call(`/groups/${gid}`, { method: 'PUT', token: member.token, body: { name: 'mine now' } });
    assert.equal(refused.status, 403);

    const viaSocket = [next(ownerSock, 'newGroupMessage'), next(memberSock, 'newGroupMessage')];
    memberSock.emit('sendGroupMessage', { groupId: gid, content: 'hi all' });
    const [m1, m2] = await Promise.all(viaSocket);
    assert.deepEqual(m1, m2);
    assert.deepEqual(Object.keys(m1).sort(), [...MESSAGE_KEYS, 'groupId'].sort());
    assert.equal(m1.groupId, gid);

    const viaRest = next(memberSock, 'newMessage');
    const posted = await call(`/groups/${gid}/messages`, { method: 'POST', token: owner.token, body: { content: 'from rest' } });
    assert.equal(posted.status, 201, JSON.stringify(posted.body));
    assert.equal((await viaRest).id, posted.body.id);

    const updated = next(memberSock, 'groupUpdated');
    assert.equal((await call(`/groups/${gid}`, { method: 'PUT', token: owner.token, body: { description: 'new' } })).status, 200);
    assert.equal((await updated).description, 'new');

    const history = await ask(memberSock, 'getGroupHistory', { groupId: gid });
    assert.deepEqual(history.map((m) => m.content), ['hi all', 'from rest']);

    // An outsider sees nothing and may not post, read or join.
    const refusedPost = next(outsiderSock, 'error');
    outsiderSock.emit('sendGroupMessage', { groupId: gid, content: 'let me in' });
    assert.equal(typeof (await refusedPost).error, 'string');
    assert.equal(typeof (await ask(outsiderSock, 'getGroupHistory', { groupId: gid })).error, 'string');
    const refusedJoin = next(outsiderSock, 'error');
    outsiderSock.emit('joinGroup', { groupId: gid });
    assert.equal(typeof (await refusedJoin).error, 'string');

    // leaveGroup mutes the group for that socket; joinGroup brings it back.
    memberSock.emit('leaveGroup', { groupId: gid });
    const ownerSees = next(ownerSock, 'newGroupMessage', (m) => m.content === 'while muted');
    ownerSock.emit('sendGroupMessage', { groupId: gid, content: 'while muted' });
    await ownerSees;
    memberSock.emit('joinGroup', { groupId: gid });
    const back = next(memberSock, 'newGroupMessage', (m) => m.content === 'welcome back');
    // joinGroup is handled in order with the socket's other events: ask something after it.
    await ask(memberSock, 'getGroupHistory', { groupId: gid });
    ownerSock.emit('sendGroupMessage', { groupId: gid, content: 'welcome back' });
    await back;
    assert.ok(!memberSock.recorded.some((e) => e.data?.content === 'while muted'));

    // Removed: the member learns it, then gets nothing more from the group.
    const removed = next(memberSock, 'memberRemoved');
    const gone = await call(`/groups/${gid}/members/${member.id}`, { method: 'DELETE', token: owner.token });
    assert.equal(gone.status, 200, JSON.stringify(gone.body));
    assert.equal((await removed).userId, member.id);
    const last = next(ownerSock, 'newGroupMessage', (m) => m.content === 'after removal');
    ownerSock.emit('sendGroupMessage', { groupId: gid, content: 'after removal' });
    await last;
    await new Promise((r) => setTimeout(r, 100));
    assert.ok(!memberSock.recorded.some((e) => e.data?.content === 'after removal'));
    assert.ok(!outsiderSock.recorded.some((e) => e.event === 'newGroupMessage' || e.event === 'newMessage'));
    for (const s of [ownerSock, memberSock, outsiderSock]) closeSocket(s);
  });

  test('three users: a group of three gets every message once, a new socket joins its groups', async () => {
    const [a, b, c] = [await register('tri'), await register('tri'), await register('tri')];
    const aSock = await connect(a);
    const group = await call('/groups', { method: 'POST', token: a.token, body: { name: `trio-${suffix}` } });
    const gid = group.body.id;
    for (const u of [b, c]) {
      assert.equal((await call(`/groups/${gid}/members/${u.id}`, { method: 'POST', token: a.token, body: { role: 'ADMIN' } })).status, 201);
    }
    // Connected after being added: put in the group's room at connect.
    const [bSock, cSock] = [await connect(b), await connect(c, { transports: ['polling'] })];
    const detail = await call(`/groups/${gid}`, { token: c.token });
    assert.equal(detail.body.memberCount, 3);
    const all = [aSock, bSock, cSock].map((s) => next(s, 'newGroupMessage'));
    cSock.emit('sendGroupMessage', { groupId: gid, content: 'from c' });
    for (const m of await Promise.all(all)) assert.equal(m.content, 'from c');
    await new Promise((r) => setTimeout(r, 100));
    for (const s of [aSock, bSock, cSock]) {
      assert.equal(s.recorded.filter((e) => e.event === 'newGroupMessage').length, 1);
    }
    for (const s of [aSock, bSock, cSock]) closeSocket(s);
  });

  test('a deleted account: its sockets close, it is gone, its token stops working', async () => {
    const [eve, fay] = [await register('eve'), await register('fay')];
    await befriend(eve, fay);
    const socket = await connect(eve);
    const disconnected = next(socket, 'disconnect');
    const deleted = await call('/users/me', { method: 'DELETE', token: eve.token });
    assert.equal(deleted.status, 204);
    await disconnected;
    assert.equal((await call(`/users/by-id/${eve.id}`)).status, 404);
    assert.equal((await call('/users/me', { token: eve.token })).status, 403);
    assert.deepEqual((await call('/friends', { token: fay.token })).body, []);
    // A DM to the deleted user is refused.
    const fays = await connect(fay);
    const error = next(fays, 'error');
    fays.emit('sendDM', { toId: eve.id, content: 'are you there?' });
    assert.equal(typeof (await error).error, 'string');
    closeSocket(fays);
    // Its token no longer opens a socket.
    const again = io(server.url, { forceNew: true, reconnection: false, auth: { token: eve.token } });
    sockets.add(again);
    assert.deepEqual(await next(again, 'error'), { error: 'Authentication failed' });
    closeSocket(again);
  });
});
