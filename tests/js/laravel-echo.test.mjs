// Laravel Echo (broadcaster: 'pusher', with pusher-js) against a real Switchboard, with events
// published by the official `pusher` SDK the way Laravel's Pusher broadcaster does.

import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import Echo from 'laravel-echo';
import Pusher from 'pusher-js';

import { startServer } from './support/server.mjs';
import { deferred, serverSdk, waitFor, withTimeout } from './support/helpers.mjs';

describe('Laravel Echo against Switchboard', () => {
  let server;
  let sdk;
  const echos = [];

  /** An Echo client whose channel authorization is signed by the SDK (the Laravel backend's job). */
  const makeEcho = async (presence) => {
    const echo = new Echo({
      broadcaster: 'pusher',
      key: server.key,
      wsHost: server.host,
      wsPort: server.port,
      forceTLS: false,
      enabledTransports: ['ws'],
      disableStats: true,
      cluster: 'mt1',
      Pusher,
      channelAuthorization: {
        customHandler: (params, callback) => {
          try {
            const data = params.channelName.startsWith('presence-') ? presence : undefined;
            callback(null, sdk.authorizeChannel(params.socketId, params.channelName, data));
          } catch (err) {
            callback(err, null);
          }
        },
      },
    });
    echos.push(echo);
    const connection = echo.connector.pusher.connection;
    if (connection.state !== 'connected') await waitFor(connection, 'connected');
    assert.equal(echo.connectionStatus(), 'connected');
    assert.match(echo.socketId(), /^\d+\.\d+$/);
    return echo;
  };

  /** Resolves when an Echo channel reports its subscription (or rejects on subscription_error). */
  const echoSubscribed = (channel, label) => {
    if (channel.subscription.subscribed) return Promise.resolve(); // confirmed while we awaited something else
    const d = deferred();
    channel.subscribed(() => d.resolve());
    channel.error((err) => d.reject(new Error(`${label}: subscription_error ${JSON.stringify(err)}`)));
    return withTimeout(d.promise, 5000, `${label} subscription`);
  };

  /** Resolves with the first payload an Echo channel's listen() delivers. */
  const listenOnce = (channel, event, label = event) => {
    const d = deferred();
    channel.listen(event, (payload) => d.resolve(payload));
    return withTimeout(d.promise, 5000, `${label} via Echo`);
  };

  before(async () => {
    server = await startServer();
    sdk = serverSdk(server);
  });

  afterEach(() => {
    for (const e of echos.splice(0)) e.disconnect();
  });

  after(async () => {
    for (const e of echos.splice(0)) e.disconnect();
    await server?.stop();
  });

  test('public channel: .listen with a leading dot and with the App\\Events namespace', async () => {
    const echo = await makeEcho();
    const channel = echo.channel('orders');
    await echoSubscribed(channel, 'orders');

    const custom = listenOnce(channel, '.OrderShipped');
    await sdk.trigger('orders', 'OrderShipped', { order: { id: 1 } });
    assert.deepEqual(await custom, { order: { id: 1 } });

    // Laravel's default broadcast name is the event class, App\Events\OrderShipped.
    const namespaced = listenOnce(channel, 'OrderShipped', 'App\\Events\\OrderShipped');
    await sdk.trigger('orders', 'App\\Events\\OrderShipped', { order: { id: 2 }, socket: null });
    assert.deepEqual(await namespaced, { order: { id: 2 }, socket: null });
  });

  test('private channel: Echo.private("orders") subscribes to private-orders and receives events', async () => {
    const echo = await makeEcho();
    const channel = echo.private('orders');
    assert.equal(channel.name, 'private-orders');
    await echoSubscribed(channel, 'private-orders');
    assert.equal(echo.connector.pusher.channel('private-orders').subscribed, true);

    const got = listenOnce(channel, '.OrderShipped');
    await sdk.trigger('private-orders', 'OrderShipped', { id: 99, total: '12.50' });
    assert.deepEqual(await got, { id: 99, total: '12.50' });
  });

  test('private channel: whisper reaches the other client through listenForWhisper', async () => {
    const a = await makeEcho();
    const b = await makeEcho();
    const chA = a.private('whispers');
    const chB = b.private('whispers');
    await echoSubscribed(chA, 'a');
    await echoSubscribed(chB, 'b');

    const d = deferred();
    chB.listenForWhisper('typing', (payload) => d.resolve(payload));
    chA.whisper('typing', { name: 'Taylor' });
    assert.deepEqual(await withTimeout(d.promise, 5000, 'whisper'), { name: 'Taylor' });
  });

  test('toOthers: trigger with the sender socket_id skips that Echo client', async () => {
    const sender = await makeEcho();
    const other = await makeEcho();
    const chSender = sender.channel('feed');
    const chOther = other.channel('feed');
    await echoSubscribed(chSender, 'sender');
    await echoSubscribed(chOther, 'other');

    const senderSeen = [];
    chSender.listen('.Posted', (p) => senderSeen.push(p));
    const got = listenOnce(chOther, '.Posted');
    await sdk.trigger('feed', 'Posted', { n: 1 }, { socket_id: sender.socketId() });
    assert.deepEqual(await got, { n: 1 });

    const marker = listenOnce(chSender, '.Marker');
    await sdk.trigger('feed', 'Marker', {});
    await marker;
    assert.deepEqual(senderSeen, []);
  });

  test('presence channel: here, joining, leaving', async () => {
    const taylor = { id: 1, name: 'Taylor' };
    const abigail = { id: 2, name: 'Abigail' };

    const echo1 = await makeEcho({ user_id: '1', user_info: taylor });
    const here1 = deferred();
    const joined = deferred();
    const left = deferred();
    echo1
      .join('chat')
      .here((users) => here1.resolve(users))
      .joining((user) => joined.resolve(user))
      .leaving((user) => left.resolve(user));
    assert.deepEqual(await withTimeout(here1.promise, 5000, 'here() for the first user'), [taylor]);

    const echo2 = await makeEcho({ user_id: '2', user_info: abigail });
    const here2 = deferred();
    echo2.join('chat').here((users) => here2.resolve(users));
    const users = await withTimeout(here2.promise, 5000, 'here() for the second user');
    assert.deepEqual([...users].sort((x, y) => x.id - y.id), [taylor, abigail]);
    assert.deepEqual(await withTimeout(joined.promise, 5000, 'joining()'), abigail);

    echo2.leave('chat');
    assert.deepEqual(await withTimeout(left.promise, 5000, 'leaving()'), abigail);

    const api = await sdk.get({ path: '/channels/presence-chat/users' });
    assert.equal(api.status, 200);
    assert.deepEqual((await api.json()).users, [{ id: '1' }]);
  });
});
