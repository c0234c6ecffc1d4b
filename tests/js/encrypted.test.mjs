// End-to-end encrypted channels: the SDK encrypts, pusher-js decrypts, and the server (and any
// subscriber without the shared secret) only ever sees ciphertext.

import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';

import { startServer } from './support/server.mjs';
import {
  connectedClient,
  disconnectAll,
  frameData,
  rawClient,
  serverSdk,
  subscribed,
  uid,
  waitFor,
} from './support/helpers.mjs';

describe('private-encrypted channels', () => {
  let server;
  let sdk;
  const clients = [];
  const raws = [];

  before(async () => {
    server = await startServer();
    sdk = serverSdk(server, { encryptionMasterKeyBase64: randomBytes(32).toString('base64') });
  });

  afterEach(() => {
    disconnectAll(clients);
    for (const r of raws.splice(0)) r.close();
  });

  after(async () => {
    disconnectAll(clients);
    for (const r of raws.splice(0)) r.close();
    await server?.stop();
  });

  test('pusher-js decrypts; a raw subscriber sees only ciphertext and nonce', async () => {
    const name = uid('private-encrypted-vault');
    const plaintext = 'the launch code is 0000-PLAINTEXT-MARKER';
    const payload = { message: plaintext, n: 42 };

    const authorized = [];
    const client = await connectedClient(server, {
      authorize: (params, callback) => {
        const auth = sdk.authorizeChannel(params.socketId, params.channelName);
        authorized.push({ ...auth }); // a copy: pusher-js deletes shared_secret before sending the subscribe
        callback(null, auth);
      },
    });
    clients.push(client);
    const [channel] = await subscribed(client, name);
    assert.equal(authorized.length, 1);
    assert.equal(typeof authorized[0].shared_secret, 'string', 'authorizeChannel returns shared_secret');

    // A raw protocol-7 client on the same channel, signed by the app backend for its socket_id.
    const raw = await rawClient(server);
    raws.push(raw);
    const established = await raw.next((f) => f.event === 'pusher:connection_established');
    const socketId = frameData(established).socket_id;
    assert.match(socketId, /^\d+\.\d+$/);
    const rawAuth = sdk.authorizeChannel(socketId, name);
    raw.send('pusher:subscribe', { channel: name, auth: rawAuth.auth });
    await raw.next((f) => f.event === 'pusher_internal:subscription_succeeded' && f.channel === name);

    const decrypted = waitFor(channel, 'secret-event');
    const res = await sdk.trigger(name, 'secret-event', payload);
    assert.equal(res.status, 200);
    assert.deepEqual(await decrypted, payload, 'pusher-js decrypts the event with its shared_secret');

    const frame = await raw.next((f) => f.event === 'secret-event' && f.channel === name);
    const text = raw.texts.find((t) => t.includes('"secret-event"'));
    assert.ok(text, 'raw frame text recorded');
    assert.equal(text.includes(plaintext), false, 'the wire frame must not carry the plaintext');
    assert.equal(text.includes('PLAINTEXT-MARKER'), false);
    const data = frameData(frame);
    assert.equal(typeof data, 'object');
    assert.equal(typeof data.ciphertext, 'string');
    assert.equal(typeof data.nonce, 'string');
    assert.ok(data.ciphertext.length > 0);
    assert.equal(Buffer.from(data.nonce, 'base64').length, 24, 'a 24-byte secretbox nonce');
    assert.equal(data.message, undefined);
  });

  test('a private-encrypted subscription signed with the wrong secret is refused', async () => {
    const name = uid('private-encrypted-locked');
    const wrong = serverSdk({ ...server, secret: 'wrong-secret' }, { encryptionMasterKeyBase64: randomBytes(32).toString('base64') });
    const client = await connectedClient(server, {
      authorize: (params, callback) => callback(null, wrong.authorizeChannel(params.socketId, params.channelName)),
    });
    clients.push(client);
    const channel = client.subscribe(name);
    const err = await waitFor(channel, 'pusher:subscription_error');
    assert.equal(err.type, 'AuthError');
    assert.equal(err.status, 401);
  });
});
