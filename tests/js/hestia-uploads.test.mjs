// Hestia's profile pictures as a browser or React Native client sends them: `fetch` with a
// `FormData` holding the file (the client's file name and type are its own business), the
// absolute URL from the answer fetched back, and a file that is not an image refused.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { crc32, deflateSync } from 'node:zlib';

import { startServer } from './support/server.mjs';

let server;
let base;

before(async () => {
  server = await startServer();
  base = `http://127.0.0.1:${server.port}`;
});

after(async () => {
  await server?.stop();
});

/** A `width` × `height` RGB PNG with a gradient, built from its chunks. */
function png(width, height) {
  const chunk = (type, data) => {
    const out = Buffer.alloc(12 + data.length);
    out.writeUInt32BE(data.length, 0);
    out.write(type, 4, 'latin1');
    data.copy(out, 8);
    out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
    return out;
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8); // 8-bit RGB, no interlace
  const rows = Buffer.alloc(height * (1 + width * 3));
  for (let y = 0; y < height; y += 1) {
    const row = y * (1 + width * 3);
    for (let x = 0; x < width; x += 1) rows.set([x * 8, y * 8, (x + y) * 4], row + 1 + x * 3);
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(rows)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

async function register(username) {
  const res = await fetch(`${base}/auth/register`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ username, password: 'password-123' }),
  });
  assert.equal(res.status, 201);
  return (await res.json()).token;
}

test('an avatar uploaded with FormData is served back as sent', async () => {
  const token = await register('js_uploader');
  const image = png(24, 16);
  const form = new FormData();
  form.append('avatar', new Blob([image], { type: 'image/jpeg' }), 'my photo.jpg');
  const res = await fetch(`${base}/users/profile-picture`, {
    method: 'PATCH',
    headers: { Authorization: `Bearer ${token}` },
    body: form,
  });
  const user = await res.json();
  assert.equal(res.status, 200, JSON.stringify(user));
  assert.equal(user.username, 'js_uploader');
  assert.match(user.profilePictureUrl, new RegExp(`^${base}/uploads/avatars/[0-9a-f]{32}\\.png$`));

  const picture = await fetch(user.profilePictureUrl);
  assert.equal(picture.status, 200);
  assert.equal(picture.headers.get('content-type'), 'image/png');
  assert.equal(picture.headers.get('x-content-type-options'), 'nosniff');
  assert.equal(picture.headers.get('access-control-allow-origin'), '*');
  assert.deepEqual(Buffer.from(await picture.arrayBuffer()), image);

  const me = await (await fetch(`${base}/users/me`, { headers: { Authorization: `Bearer ${token}` } })).json();
  assert.equal(me.profilePictureUrl, user.profilePictureUrl);
});

test('a banner that is not an image is refused in Hestia\'s error format', async () => {
  const token = await register('js_liar');
  const form = new FormData();
  form.append('banner', new Blob(['<html><script>alert(1)</script></html>'], { type: 'image/png' }), 'banner.png');
  const res = await fetch(`${base}/users/profile-banner`, {
    method: 'PATCH',
    headers: { Authorization: `Bearer ${token}` },
    body: form,
  });
  assert.equal(res.status, 400);
  assert.deepEqual(await res.json(), { error: 'Only image files are allowed!' });
});
