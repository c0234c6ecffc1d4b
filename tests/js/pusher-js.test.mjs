// The official pusher-js client and the official `pusher` Node SDK against a real Switchboard.

import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { startServer } from './support/server.mjs';
import {
  connectedClient,
  disconnectAll,
  frameData,
  pusherClient,
  rawClient,
  recordChannel,
  serverSdk,
  subscribed,
  uid,
  waitFor,
  withTimeout,
} from './support/helpers.mjs';

describe('pusher-js against Switchboard', () => {
  let server;
  let sdk;
  const clients = [];
  const raws = [];

  /** A raw protocol-7 client, closed after the test. */
  const raw = async (options) => {
    const r = await rawClient(server, options);
    raws.push(r);
    return r;
  };
  const closeRaws = () => {
    for (const r of raws.splice(0)) r.close();
  };

  /** A connected pusher-js client, disconnected after the test. */
  const client = async (options = {}) => {
    const c = await connectedClient(server, { sdk, ...options });
    clients.push(c);
    return c;
  };

  before(async () => {
    server = await startServer();
    sdk = serverSdk(server);
  });

  afterEach(() => {
    disconnectAll(clients);
    closeRaws();
  });

  after(async () => {
    disconnectAll(clients);
    closeRaws();
    await server?.stop();
  });

  test('connects and gets a socket_id', async () => {
    const a = await client();
    const b = await client();
    assert.equal(a.connection.state, 'connected');
    assert.match(a.connection.socket_id, /^\d+\.\d+$/);
    assert.notEqual(a.connection.socket_id, b.connection.socket_id);
  });

  test('public channel receives pusher.trigger with string and object data', async () => {
    const a = await client();
    const name = uid('public');
    const [channel] = await subscribed(a, name);

    const gotString = waitFor(channel, 'greeting');
    const res1 = await sdk.trigger(name, 'greeting', 'hello world');
    assert.equal(res1.status, 200);
    assert.deepEqual(await res1.json(), {});
    assert.equal(await gotString, 'hello world');

    const payload = { order: 42, items: ['a', 'b'], nested: { ok: true }, text: 'ünïcødé ✓' };
    const gotObject = waitFor(channel, 'order-updated');
    const res2 = await sdk.trigger(name, 'order-updated', payload);
    assert.equal(res2.status, 200);
    assert.deepEqual(await gotObject, payload);
  });

  test('trigger to several channels at once reaches each', async () => {
    const a = await client();
    const [c1, c2] = [uid('multi'), uid('multi')];
    const [ch1] = await subscribed(a, c1);
    const [ch2] = await subscribed(a, c2);
    const got1 = waitFor(ch1, 'fanout');
    const got2 = waitFor(ch2, 'fanout');
    const res = await sdk.trigger([c1, c2], 'fanout', { n: 1 });
    assert.equal(res.status, 200);
    assert.deepEqual(await got1, { n: 1 });
    assert.deepEqual(await got2, { n: 1 });
  });

  test('triggerBatch delivers every event of the batch', async () => {
    const a = await client();
    const [c1, c2] = [uid('batch'), uid('batch')];
    const [ch1] = await subscribed(a, c1);
    const [ch2] = await subscribed(a, c2);
    const got1 = waitFor(ch1, 'batch-one');
    const got2 = waitFor(ch2, 'batch-two');
    const res = await sdk.triggerBatch([
      { channel: c1, name: 'batch-one', data: { i: 1 } },
      { channel: c2, name: 'batch-two', data: 'two' },
    ]);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), {});
    assert.deepEqual(await got1, { i: 1 });
    assert.equal(await got2, 'two');
  });

  test('trigger with socket_id excludes that connection only', async () => {
    const excluded = await client();
    const other = await client();
    const name = uid('exclude');
    const [chExcluded] = await subscribed(excluded, name);
    const [chOther] = await subscribed(other, name);
    const seen = recordChannel(chExcluded);

    const otherGot = waitFor(chOther, 'not-for-you');
    const res = await sdk.trigger(name, 'not-for-you', { x: 1 }, { socket_id: excluded.connection.socket_id });
    assert.equal(res.status, 200);
    assert.deepEqual(await otherGot, { x: 1 });

    // A later event to everyone: once the excluded client has it, the earlier one would have come first.
    const marker = waitFor(chExcluded, 'marker');
    await sdk.trigger(name, 'marker', 'm');
    assert.equal(await marker, 'm');
    assert.deepEqual(
      seen.filter((e) => !e.event.startsWith('pusher')).map((e) => e.event),
      ['marker'],
      'the excluded socket must not receive the event',
    );
  });

  test('private channel subscribes with authorizeChannel and receives events', async () => {
    const a = await client();
    const name = uid('private-orders');
    const [channel] = await subscribed(a, name);
    assert.equal(channel.subscribed, true);
    const got = waitFor(channel, 'shipped');
    await sdk.trigger(name, 'shipped', { id: 7 });
    assert.deepEqual(await got, { id: 7 });
  });

  test('client events go to other subscribers of a private channel, not back to the sender', async () => {
    const sender = await client();
    const receiver = await client();
    const name = uid('private-chat');
    const [chSender] = await subscribed(sender, name);
    const [chReceiver] = await subscribed(receiver, name);
    const senderSeen = recordChannel(chSender);

    const got = waitFor(chReceiver, 'client-typing');
    assert.equal(chSender.trigger('client-typing', { user: 'sender', typing: true }), true);
    assert.deepEqual(await got, { user: 'sender', typing: true });

    const marker = waitFor(chSender, 'marker');
    await sdk.trigger(name, 'marker', 'm');
    await marker;
    assert.equal(
      senderSeen.some((e) => e.event === 'client-typing'),
      false,
      'a client event must not be echoed to its sender',
    );
  });

  test('presence channel: members, member_added, member_removed, client event user_id', async () => {
    const name = uid('presence-room');
    const alice = await client({ presence: { user_id: 'alice', user_info: { name: 'Alice' } } });
    const [chAlice, aliceMembers] = await subscribed(alice, name);
    assert.equal(aliceMembers.count, 1);
    assert.equal(aliceMembers.me.id, 'alice');
    assert.deepEqual(aliceMembers.me.info, { name: 'Alice' });
    assert.deepEqual(aliceMembers.get('alice'), { id: 'alice', info: { name: 'Alice' } });

    const added = waitFor(chAlice, 'pusher:member_added');
    const bob = await client({ presence: { user_id: 'bob', user_info: { name: 'Bob' } } });
    const [chBob, bobMembers] = await subscribed(bob, name);
    assert.deepEqual(await added, { id: 'bob', info: { name: 'Bob' } });
    assert.equal(bobMembers.count, 2);
    assert.equal(bobMembers.me.id, 'bob');
    const ids = [];
    bobMembers.each((m) => ids.push(m.id));
    assert.deepEqual(ids.sort(), ['alice', 'bob']);
    assert.deepEqual(bobMembers.get('alice').info, { name: 'Alice' });
    assert.equal(chAlice.members.count, 2);

    // Client events on presence channels carry the sender's user_id.
    const whisper = new Promise((resolve) => chAlice.bind('client-wave', (data, metadata) => resolve({ data, metadata })));
    chBob.trigger('client-wave', { hi: true });
    const { data, metadata } = await withTimeout(whisper, 5000, 'client-wave on presence channel');
    assert.deepEqual(data, { hi: true });
    assert.equal(metadata?.user_id, 'bob');

    const removed = waitFor(chAlice, 'pusher:member_removed');
    bob.disconnect();
    assert.deepEqual(await removed, { id: 'bob', info: { name: 'Bob' } });
    assert.equal(chAlice.members.count, 1);
  });

  test('a user with two connections on a presence channel is one member; leaving needs both gone', async () => {
    const name = uid('presence-multi');
    const watcher = await client({ presence: { user_id: 'watcher' } });
    const [chWatcher] = await subscribed(watcher, name);
    const seen = recordChannel(chWatcher);

    // Tab 1 is a raw protocol-7 client so the test can tell when the server has seen it close.
    const added = waitFor(chWatcher, 'pusher:member_added');
    const tab1 = await raw();
    const socketId = frameData(await tab1.next((f) => f.event === 'pusher:connection_established')).socket_id;
    const carol1 = { user_id: 'carol', user_info: { tab: 1 } };
    const auth = sdk.authorizeChannel(socketId, name, carol1);
    tab1.send('pusher:subscribe', { channel: name, auth: auth.auth, channel_data: auth.channel_data });
    await tab1.next((f) => f.event === 'pusher_internal:subscription_succeeded' && f.channel === name);
    assert.equal((await added).id, 'carol');
    const tab2 = await client({ presence: { user_id: 'carol', user_info: { tab: 2 } } });
    const [, tab2Members] = await subscribed(tab2, name);
    assert.equal(tab2Members.count, 2, 'carol counts once');

    tab1.close();
    await withTimeout(tab1.closed, 5000, 'tab 1 closed');
    // Carol still has tab2: the watcher must not be told she left. A server event orders the check.
    const marker1 = waitFor(chWatcher, 'marker');
    await sdk.trigger(name, 'marker', 1);
    await marker1;
    assert.equal(chWatcher.members.count, 2);
    const removed = waitFor(chWatcher, 'pusher:member_removed');
    tab2.disconnect();
    assert.equal((await removed).id, 'carol');
    assert.deepEqual(
      seen.filter((e) => e.event.startsWith('pusher:member')).map((e) => `${e.event}:${e.data.id}`),
      ['pusher:member_added:carol', 'pusher:member_removed:carol'],
    );
  });

  test('HTTP API: /channels, /channels/<presence> info, /channels/<presence>/users', async () => {
    const presence = uid('presence-api');
    const pub = uid('api-public');
    const a = await client({ presence: { user_id: 'u-1', user_info: { n: 1 } } });
    const b = await client({ presence: { user_id: 'u-2' } });
    const [chA] = await subscribed(a, presence);
    const added = waitFor(chA, 'pusher:member_added');
    await subscribed(b, presence);
    await added;
    await subscribed(a, pub);

    const all = await sdk.get({ path: '/channels' });
    assert.equal(all.status, 200);
    const allBody = await all.json();
    assert.equal(typeof allBody.channels, 'object');
    assert.deepEqual(allBody.channels[presence], {});
    assert.deepEqual(allBody.channels[pub], {});

    const filtered = await sdk.get({ path: '/channels', params: { filter_by_prefix: 'presence-', info: 'user_count' } });
    assert.equal(filtered.status, 200);
    const filteredBody = await filtered.json();
    assert.deepEqual(filteredBody.channels[presence], { user_count: 2 });
    assert.equal(filteredBody.channels[pub], undefined, 'filter_by_prefix must drop other channels');
    for (const name of Object.keys(filteredBody.channels)) assert.ok(name.startsWith('presence-'), name);

    const info = await sdk.get({ path: `/channels/${presence}`, params: { info: 'user_count,subscription_count' } });
    assert.equal(info.status, 200);
    const infoBody = await info.json();
    assert.equal(infoBody.occupied, true);
    assert.equal(infoBody.user_count, 2);

    const plain = await sdk.get({ path: `/channels/${pub}` });
    assert.equal(plain.status, 200);
    assert.equal((await plain.json()).occupied, true);

    const empty = await sdk.get({ path: `/channels/${uid('nobody-here')}` });
    assert.equal(empty.status, 200);
    assert.equal((await empty.json()).occupied, false);

    const users = await sdk.get({ path: `/channels/${presence}/users` });
    assert.equal(users.status, 200);
    const usersBody = await users.json();
    assert.ok(Array.isArray(usersBody.users));
    assert.deepEqual(
      [...usersBody.users].sort((x, y) => x.id.localeCompare(y.id)),
      [{ id: 'u-1' }, { id: 'u-2' }],
    );
  });

  test('signin and sendToUser reach every connection of that user only', async () => {
    const u1a = await client({ user: { id: 'user-1', user_info: { name: 'One' } } });
    const u1b = await client({ user: { id: 'user-1', user_info: { name: 'One' } } });
    const u2 = await client({ user: { id: 'user-2' } });
    const frames = [];
    for (const c of [u1a, u1b, u2]) c.connection.bind('message', (m) => frames.push(m));

    for (const c of [u1a, u1b, u2]) {
      const ok = waitFor(c.connection, 'message', 5000, (m) => m.event === 'pusher:signin_success');
      c.signin();
      const msg = await ok;
      assert.equal(typeof msg.data.user_data, 'string');
      await withTimeout(c.user.signinDonePromise, 5000, 'signinDonePromise');
      assert.ok(c.user.user_data?.id, 'pusher-js parsed user_data');
    }
    assert.equal(u1a.user.user_data.id, 'user-1');
    assert.deepEqual(u1a.user.user_data.user_info, { name: 'One' });

    const gotA = waitFor(u1a.user, 'private-note');
    const gotB = waitFor(u1b.user, 'private-note');
    const u2Seen = [];
    u2.user.bind('private-note', (d) => u2Seen.push(d));
    const res = await sdk.sendToUser('user-1', 'private-note', { secret: 'for user-1' });
    assert.equal(res.status, 200);
    assert.deepEqual(await gotA, { secret: 'for user-1' });
    assert.deepEqual(await gotB, { secret: 'for user-1' });

    const marker = waitFor(u2.user, 'marker');
    await sdk.sendToUser('user-2', 'marker', 'm');
    assert.equal(await marker, 'm');
    assert.deepEqual(u2Seen, [], 'user-2 must not get user-1 events');

    const rejected = frames.filter((m) => m.event === 'pusher:subscription_error' || m.event === 'pusher:error');
    assert.deepEqual(rejected, [], "pusher-js's own #server-to-user-<id> subscription must not be rejected");
    // pusher-js subscribes #server-to-user-<id> after signin_success, on its own: its answer may
    // come after the user events above (they do not go through that channel), so wait for it.
    for (const c of [u1a, u1b, u2]) {
      const deadline = Date.now() + 5000;
      while (!c.user.serverToUserChannel?.subscribed && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.equal(c.user.serverToUserChannel?.subscribed, true, '#server-to-user-<id> subscription succeeded');
    }
  });

  test('terminateUserConnections disconnects all of that user’s connections', async () => {
    const t1 = await client({ user: { id: 'doomed' } });
    const t2 = await client({ user: { id: 'doomed' } });
    const survivor = await client({ user: { id: 'survivor' } });
    for (const c of [t1, t2, survivor]) {
      c.signin();
      await withTimeout(c.user.signinDonePromise, 5000, 'signin');
      assert.ok(c.user.user_data, 'signed in');
    }
    const name = uid('after-terminate');
    const [chSurvivor] = await subscribed(survivor, name);

    const watch = (c) => {
      const codes = [];
      c.connection.bind('error', (e) => codes.push(e.data?.code ?? e.error?.data?.code));
      return { codes, gone: waitFor(c.connection, 'disconnected', 5000) };
    };
    const w1 = watch(t1);
    const w2 = watch(t2);
    const res = await sdk.terminateUserConnections('doomed');
    assert.equal(res.status, 200);

    for (const w of [w1, w2]) {
      await w.gone;
      // 4009 (a 4000–4099 close): pusher-js must not reconnect the same way.
      assert.ok(w.codes.includes(4009), `error codes seen: ${JSON.stringify(w.codes)}`);
    }
    assert.equal(t1.connection.state, 'disconnected');
    assert.equal(t2.connection.state, 'disconnected');

    assert.equal(survivor.connection.state, 'connected');
    const got = waitFor(chSurvivor, 'still-here');
    await sdk.trigger(name, 'still-here', 1);
    assert.equal(await got, 1);
  });

  test('cache channel replays the last event to a new subscriber', async () => {
    const name = uid('cache-prices');
    await sdk.trigger(name, 'price', { v: 1 });
    await sdk.trigger(name, 'price', { v: 2 });

    const a = await client();
    const channel = a.subscribe(name);
    const seen = recordChannel(channel);
    const replay = waitFor(channel, 'price');
    await waitFor(channel, 'pusher:subscription_succeeded');
    assert.deepEqual(await replay, { v: 2 }, 'the last event is replayed');

    const marker = waitFor(channel, 'marker');
    await sdk.trigger(name, 'marker', 'm');
    await marker;
    assert.deepEqual(
      seen.map((e) => e.event),
      ['pusher:subscription_succeeded', 'price', 'marker'],
      'only the last event is replayed, and no cache_miss',
    );

    // The backend can read what a new subscriber would get (info=cache).
    const res = await sdk.get({ path: `/channels/${name}`, params: { info: 'cache' } });
    assert.equal(res.status, 200);
    const { cache } = await res.json();
    assert.equal(cache.event, 'marker');
    assert.equal(cache.data, 'm', 'the data as subscribers receive it');
    assert.ok(cache.ttl > 0 && cache.ttl <= 1800, `ttl ${cache.ttl}`);
  });

  test('empty cache channel gives pusher:cache_miss', async () => {
    const a = await client();
    for (const name of [uid('cache-empty'), uid('private-cache-empty')]) {
      const channel = a.subscribe(name);
      const miss = waitFor(channel, 'pusher:cache_miss');
      await waitFor(channel, 'pusher:subscription_succeeded');
      await miss;
    }
  });

  test('bad channel authorization gives pusher:subscription_error', async () => {
    const wrong = serverSdk({ ...server, secret: 'not-the-secret' });
    const a = await client({
      authorize: (params, callback) => callback(null, wrong.authorizeChannel(params.socketId, params.channelName)),
    });
    const name = uid('private-locked');
    const channel = a.subscribe(name);
    const err = await waitFor(channel, 'pusher:subscription_error');
    assert.equal(err.type, 'AuthError');
    assert.equal(err.status, 401);
    assert.equal(channel.subscribed, false);

    // Signed for another socket is just as bad.
    const b = await client({
      authorize: (params, callback) => callback(null, sdk.authorizeChannel('1234.5678', params.channelName)),
    });
    const channelB = b.subscribe(name);
    const errB = await waitFor(channelB, 'pusher:subscription_error');
    assert.equal(errB.type, 'AuthError');
    assert.equal(errB.status, 401);

    // The connection survives a refused subscription.
    assert.equal(a.connection.state, 'connected');
    const pub = uid('after-bad-auth');
    const [ok] = await subscribed(a, pub);
    const got = waitFor(ok, 'e');
    await sdk.trigger(pub, 'e', 1);
    assert.equal(await got, 1);
  });

  test('the server answers a client close frame (RFC 6455 closing handshake)', async () => {
    const r = await raw();
    await r.next((f) => f.event === 'pusher:connection_established');
    r.socket.close(1000, 'bye');
    const closed = await withTimeout(r.closed, 5000, 'close');
    // `ws` reports 1006 when the peer dropped TCP without sending its own Close frame.
    assert.equal(closed.code, 1000, `close code seen by the client: ${closed.code}`);
  });

  test('wrong app key: error 4001 and the connection does not stay connected', async () => {
    const bogus = await raw({ key: 'no-such-key' });
    const frame = await bogus.next((f) => f.event === 'pusher:error', 5000, 'pusher:error');
    const data = typeof frame.data === 'string' ? JSON.parse(frame.data) : frame.data;
    assert.equal(data.code, 4001);
    assert.equal((await withTimeout(bogus.closed, 5000, 'close')).code, 4001);
    assert.equal(bogus.frames.some((f) => f.event === 'pusher:connection_established'), false);

    const bad = pusherClient(server, { key: 'no-such-key' });
    clients.push(bad);
    const codes = [];
    const states = [];
    bad.connection.bind('error', (e) => codes.push(e.data?.code ?? e.error?.data?.code));
    bad.connection.bind('state_change', (s) => states.push(s.current));
    await waitFor(bad.connection, 'disconnected', 10000);
    assert.ok(codes.includes(4001), `error codes seen: ${JSON.stringify(codes)}`);
    assert.equal(states.includes('connected'), false);
    assert.equal(bad.connection.socket_id, undefined);
  });
});
