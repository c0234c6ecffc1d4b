// Local push services for the end-to-end tests, built on node's crypto only: an FCM HTTP v1
// receiver (OAuth2 token endpoint that checks the RS256 JWT-bearer assertion against the test
// service account's public key, and a send endpoint that wants the access token), a Web Push
// endpoint that checks the VAPID ES256 token, and the browser side of a subscription (P-256
// keys, auth secret, RFC 8291 decryption).

import { createServer } from 'node:http';
import {
  createDecipheriv,
  createECDH,
  createPublicKey,
  generateKeyPairSync,
  hkdfSync,
  randomBytes,
  verify,
} from 'node:crypto';

const ACCESS_TOKEN = 'ya29.js-test-token';
export const PROJECT = 'switchboard-js';

const b64url = (buf) => Buffer.from(buf).toString('base64url');

/** Checks a JWT's signature with `check(signingInput, signature)`; returns [header, claims]. */
function readJwt(token, check) {
  const parts = String(token).split('.');
  if (parts.length !== 3) return null;
  const [h, c, s] = parts;
  if (!check(Buffer.from(`${h}.${c}`), Buffer.from(s, 'base64url'))) return null;
  return [JSON.parse(Buffer.from(h, 'base64url')), JSON.parse(Buffer.from(c, 'base64url'))];
}

/**
 * Starts both services on one loopback port. Returns the service-account JSON to give the
 * server, URLs, and `next()` / `quiet(ms)` over what arrived ({kind:'fcm', message} or
 * {kind:'webpush', id, headers, body}).
 */
export async function startPushReceiver() {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });
  const clientEmail = 'push-js@switchboard-js.iam.gserviceaccount.com';
  const received = [];
  const waiters = [];
  const deliver = (item) => {
    const waiter = waiters.shift();
    if (waiter) waiter(item);
    else received.push(item);
  };
  let base;
  let tokenCalls = 0;

  const server = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const answer = (status, json) => {
        res.writeHead(status, { 'Content-Type': 'application/json' });
        res.end(json === undefined ? '' : JSON.stringify(json));
      };
      if (req.method === 'POST' && req.url === '/token') {
        const form = new URLSearchParams(body.toString());
        const jwt = readJwt(form.get('assertion'), (input, sig) => verify('RSA-SHA256', input, publicKey, sig));
        const ok = form.get('grant_type') === 'urn:ietf:params:oauth:grant-type:jwt-bearer'
          && jwt
          && jwt[0].alg === 'RS256'
          && jwt[1].iss === clientEmail
          && jwt[1].aud === `${base}/token`
          && jwt[1].scope === 'https://www.googleapis.com/auth/firebase.messaging'
          && jwt[1].exp > Date.now() / 1000;
        if (!ok) return answer(400, { error: 'invalid_grant' });
        tokenCalls += 1;
        return answer(200, { access_token: ACCESS_TOKEN, expires_in: 3599, token_type: 'Bearer' });
      }
      if (req.method === 'POST' && req.url === `/v1/projects/${PROJECT}/messages:send`) {
        if (req.headers.authorization !== `Bearer ${ACCESS_TOKEN}`) return answer(401, { error: 'bearer' });
        const { message } = JSON.parse(body.toString());
        deliver({ kind: 'fcm', message });
        return answer(200, { name: `projects/${PROJECT}/messages/1` });
      }
      const wp = req.method === 'POST' && req.url.match(/^\/wp\/([\w-]+)$/);
      if (wp) {
        const auth = req.headers.authorization ?? '';
        const m = auth.match(/^vapid t=([^,]+), k=([\w-]+)$/);
        if (!m) return answer(401, { error: 'vapid' });
        const key = Buffer.from(m[2], 'base64url');
        const jwk = { kty: 'EC', crv: 'P-256', x: b64url(key.subarray(1, 33)), y: b64url(key.subarray(33)) };
        const vapidKey = createPublicKey({ key: jwk, format: 'jwk' });
        const jwt = readJwt(m[1], (input, sig) => verify('sha256', input, { key: vapidKey, dsaEncoding: 'ieee-p1363' }, sig));
        if (!jwt || jwt[1].aud !== base || !String(jwt[1].sub).startsWith('mailto:')) return answer(401, { error: 'vapid token' });
        if (req.headers['content-encoding'] !== 'aes128gcm' || !req.headers.ttl) return answer(400, { error: 'headers' });
        deliver({ kind: 'webpush', id: wp[1], vapidKey: m[2], body });
        res.writeHead(201);
        return res.end();
      }
      return answer(404, { error: 'not found' });
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${server.address().port}`;

  return {
    base,
    serviceAccount: JSON.stringify({
      type: 'service_account',
      project_id: PROJECT,
      private_key_id: 'js-key',
      private_key: privateKey,
      client_email: clientEmail,
      token_uri: `${base}/token`,
    }),
    endpoint: (id) => `${base}/wp/${id}`,
    tokenCalls: () => tokenCalls,
    /** The next push, within `ms`. */
    next(ms = 10_000) {
      if (received.length) return Promise.resolve(received.shift());
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no push within ${ms} ms`)), ms);
        waiters.push((item) => {
          clearTimeout(timer);
          resolve(item);
        });
      });
    },
    /** Resolves when nothing arrives for `ms`; rejects with what did. */
    async quiet(ms = 500) {
      await new Promise((r) => setTimeout(r, ms));
      if (received.length) throw new Error(`expected no push, got ${JSON.stringify(received)}`);
    },
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

/** A browser's push subscription keys, and RFC 8291 decryption of what its endpoint gets. */
export function browserKeys() {
  const ecdh = createECDH('prime256v1');
  ecdh.generateKeys();
  const auth = randomBytes(16);
  const uaPublic = ecdh.getPublicKey();
  return {
    keys: { p256dh: b64url(uaPublic), auth: b64url(auth) },
    /** The JSON inside an `aes128gcm` body. */
    decrypt(body) {
      const salt = body.subarray(0, 16);
      const idlen = body[20];
      const senderPublic = body.subarray(21, 21 + idlen);
      const sealed = body.subarray(21 + idlen);
      const ecdhSecret = ecdh.computeSecret(senderPublic);
      const keyInfo = Buffer.concat([Buffer.from('WebPush: info\0'), uaPublic, senderPublic]);
      const ikm = Buffer.from(hkdfSync('sha256', ecdhSecret, auth, keyInfo, 32));
      const cek = Buffer.from(hkdfSync('sha256', ikm, salt, Buffer.from('Content-Encoding: aes128gcm\0'), 16));
      const nonce = Buffer.from(hkdfSync('sha256', ikm, salt, Buffer.from('Content-Encoding: nonce\0'), 12));
      const decipher = createDecipheriv('aes-128-gcm', cek, nonce);
      decipher.setAuthTag(sealed.subarray(sealed.length - 16));
      const plain = Buffer.concat([decipher.update(sealed.subarray(0, sealed.length - 16)), decipher.final()]);
      if (plain[plain.length - 1] !== 2) throw new Error('no last-record delimiter');
      return JSON.parse(plain.subarray(0, plain.length - 1).toString());
    },
  };
}
