// The remembered unlock (src/protocol/remember.ts, docs/PHONE.md section 7): after the passphrase,
// the keystore key is kept wrapped under a non-extractable AES-GCM key in IndexedDB
// (fake-indexeddb here, WebCrypto is node's); a cold start opens the keystore with it and no
// scrypt. It expires, "Lock now" deletes it, and anything altered falls back to the passphrase.
import { beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO } from './setup.js';
import { b64e, fromHex } from '../src/protocol/encoding.js';
import { Keystore, deriveKey, storage, type KeystoreFile } from '../src/protocol/keystore.js';
import { PhoneDevice, WrongPassphrase } from '../src/protocol/device.js';
import { ed25519PublicKey } from '../src/protocol/crypto.js';
import { type PrfAuthenticator, type RememberedRecord, DEFAULT_REMEMBER_SECONDS, REMEMBER_KEY, rememberedKind } from '../src/protocol/remember.js';

const V = JSON.parse(readFileSync(join(REPO, 'tests/vectors/core/vectors.json'), 'utf8'));
const PASS = 'remember me';
const last = V.chain.at(-1);
const chain = (V.chain as Record<string, string>[]).map((e) => ({
  entry: b64e(fromHex(e.entry!)),
  sig: b64e(fromHex(e.sig!)),
  ...(e.device_sig ? { device_sig: b64e(fromHex(e.device_sig)) } : {}),
  ...(e.new_key_sig ? { new_key_sig: b64e(fromHex(e.new_key_sig)) } : {}),
}));
const T0 = 1_800_000_000;

async function install(): Promise<void> {
  const k = (n: string): string => b64e(fromHex(V.keys[`laptop_${n}`]));
  const ks = await Keystore.create(
    PASS,
    {
      device: { signing: k('signing_seed'), pre: k('pre'), ssh: k('ssh_seed') },
      account_key: b64e(ed25519PublicKey(fromHex(V.keys.account_key_seed))),
      seen: { seq: last.seq, head: last.digest },
    },
    1 << 14,
  );
  await storage.put({ keystore: ks.toFile(), device: { server: 'https://keys.example.org', account: V.account, name: 'laptop' }, chain });
}

const at = (t: number) => ({ clock: () => t });
const record = async (): Promise<RememberedRecord> => (await storage.get<RememberedRecord>(REMEMBER_KEY))!;

beforeEach(async () => {
  await PhoneDevice.wipe();
  await install();
});

test('after the passphrase once, a cold start opens the keystore with the wrapped key: no passphrase, same device', async () => {
  assert.deepEqual(await PhoneDevice.unlockRemembered(at(T0)), { device: null, reason: 'none' });
  const before = await storage.get<KeystoreFile>('keystore');
  const d = await PhoneDevice.unlock(PASS, at(T0));
  assert.equal(await d.remember(), false); // no authenticator: the non-extractable key alone
  assert.equal(await rememberedKind(), 'key');
  // the keystore at rest is unchanged: still sealed under the passphrase's scrypt key only
  assert.deepEqual(await storage.get<KeystoreFile>('keystore'), before);
  const got = await PhoneDevice.unlockRemembered(at(T0 + 60));
  assert.ok(got.device);
  assert.equal(got.device.deviceId, V.laptop_id);
  assert.equal(got.device.me().role, 'admin');
  // and it saves under the same key: the passphrase still opens what it wrote
  await (got.device as unknown as { save(): Promise<void> }).save();
  assert.equal((await PhoneDevice.unlock(PASS)).deviceId, V.laptop_id);
});

test('what IndexedDB holds: a non-extractable key that a script cannot export, and no key in the clear', async () => {
  const d = await PhoneDevice.unlock(PASS, at(T0));
  await d.remember();
  const r = await record();
  assert.equal(r.v, 1);
  assert.ok(r.key instanceof CryptoKey);
  assert.equal(r.key.extractable, false);
  assert.deepEqual(r.key.algorithm, { name: 'AES-GCM', length: 256 });
  await assert.rejects(crypto.subtle.exportKey('raw', r.key)); // a script in the page: no export
  await assert.rejects(crypto.subtle.exportKey('jwk', r.key));
  const file = (await storage.get<KeystoreFile>('keystore'))!;
  const key = await deriveKey(PASS, file.kdf);
  const hexOf = (u: Uint8Array): string => Buffer.from(u).toString('hex');
  assert.equal(r.wrapped.length, 32 + 16);
  assert.ok(!hexOf(r.wrapped).includes(hexOf(key).slice(0, 16)));
  assert.ok(!JSON.stringify(Object.values(r).map((v) => (v instanceof Uint8Array ? hexOf(v) : v))).includes(hexOf(key)));
  assert.equal(r.expires - r.created, DEFAULT_REMEMBER_SECONDS);
  assert.equal(r.salt, file.kdf.salt);
});

test('expiry: 7 days by default, counted from the passphrase; a remembered open does not extend it', async () => {
  const d = await PhoneDevice.unlock(PASS, at(T0));
  await d.remember();
  const week = DEFAULT_REMEMBER_SECONDS;
  assert.equal(week, 7 * 86400);
  assert.ok((await PhoneDevice.unlockRemembered(at(T0 + week - 1))).device);
  assert.equal((await record()).expires, T0 + week); // not moved by the open
  assert.deepEqual(await PhoneDevice.unlockRemembered(at(T0 + week)), { device: null, reason: 'expired' });
  assert.equal(await storage.get(REMEMBER_KEY), undefined); // deleted, not just ignored
  // the period is the person's choice (1 s to 30 days)
  await d.remember(86400);
  assert.ok((await PhoneDevice.unlockRemembered(at(T0 + 86399))).device);
  assert.equal((await PhoneDevice.unlockRemembered(at(T0 + 86400))).device, null);
  await assert.rejects(d.remember(31 * 86400), RangeError);
  await assert.rejects(d.remember(0), RangeError);
});

test('moving the expiry forward in IndexedDB breaks the wrapping: passphrase asked', async () => {
  const d = await PhoneDevice.unlock(PASS, at(T0));
  await d.remember();
  const r = await record();
  await storage.put({ [REMEMBER_KEY]: { ...r, expires: r.expires + 86400 * 20 } });
  assert.deepEqual(await PhoneDevice.unlockRemembered(at(T0 + 8 * 86400)), { device: null, reason: 'invalid' });
  assert.equal(await storage.get(REMEMBER_KEY), undefined);
  assert.equal((await PhoneDevice.unlock(PASS)).deviceId, V.laptop_id);
});

test('Lock now deletes the wrapping key: the next start asks the passphrase, which still works', async () => {
  const d = await PhoneDevice.unlock(PASS, at(T0));
  await d.remember();
  await PhoneDevice.lock();
  assert.equal(await storage.get(REMEMBER_KEY), undefined);
  assert.equal(await rememberedKind(), 'none');
  assert.deepEqual(await PhoneDevice.unlockRemembered(at(T0 + 1)), { device: null, reason: 'none' });
  assert.equal(await PhoneDevice.exists(), true); // the keystore stays: only the shortcut went
  await assert.rejects(PhoneDevice.unlock('wrong'), WrongPassphrase);
  assert.equal((await PhoneDevice.unlock(PASS)).deviceId, V.laptop_id);
  // and a wipe (removal) takes the remembered unlock with everything else
  await d.remember();
  await PhoneDevice.wipe();
  assert.equal(await storage.get(REMEMBER_KEY), undefined);
});

test('a tampered wrapped blob, another wrapping key, a missing key or another keystore: passphrase fallback', async () => {
  const d = await PhoneDevice.unlock(PASS, at(T0));
  const tamper = async (change: (r: RememberedRecord) => unknown): Promise<void> => {
    await d.remember();
    await storage.put({ [REMEMBER_KEY]: change(await record()) });
    assert.deepEqual(await PhoneDevice.unlockRemembered(at(T0 + 1)), { device: null, reason: 'invalid' });
    assert.equal(await storage.get(REMEMBER_KEY), undefined, 'the useless record is deleted');
  };
  await tamper((r) => {
    const w = new Uint8Array(r.wrapped);
    w[5]! ^= 1;
    return { ...r, wrapped: w };
  });
  await tamper((r) => ({ ...r, wrapped: r.wrapped.slice(0, 40) }));
  await tamper((r) => ({ ...r, iv: new Uint8Array(12) }));
  const other = await crypto.subtle.generateKey({ name: 'AES-GCM', length: 256 }, false, ['encrypt', 'decrypt']);
  await tamper((r) => ({ ...r, key: other }));
  await tamper((r) => {
    const { key: _drop, ...rest } = r;
    return rest;
  });
  await tamper((r) => ({ ...r, key: 'not a key' }));
  await tamper((r) => ({ ...r, salt: b64e(new Uint8Array(16)) }));
  await tamper(() => 'garbage');
  // a well-wrapped key that does not open this keystore (the keystore was replaced): refused too
  await d.remember();
  const file = (await storage.get<KeystoreFile>('keystore'))!;
  const sealed = Buffer.from(file.sealed, 'base64url');
  sealed[20]! ^= 1;
  await storage.put({ keystore: { ...file, sealed: b64e(sealed) } });
  assert.deepEqual(await PhoneDevice.unlockRemembered(at(T0 + 1)), { device: null, reason: 'invalid' });
  assert.equal(await storage.get(REMEMBER_KEY), undefined);
  await storage.put({ keystore: file });
  assert.equal((await PhoneDevice.unlock(PASS)).deviceId, V.laptop_id);
});

// The PRF layer, with a software authenticator computing what CTAP2's hmac-secret computes
// (HMAC-SHA-256 under the credential's secret); the browser side is feature-detected and
// absent in headless Chromium, which the e2e test covers.
function softAuthenticator(): PrfAuthenticator & { cancel: boolean; secret: Buffer } {
  const a = {
    cancel: false,
    secret: Buffer.from('11'.repeat(32), 'hex'),
    async enroll(salt: Uint8Array) {
      return { id: new Uint8Array([1, 2, 3]), secret: new Uint8Array(createHmac('sha256', a.secret).update(salt).digest()) };
    },
    async evaluate(_id: Uint8Array, salt: Uint8Array) {
      return a.cancel ? null : new Uint8Array(createHmac('sha256', a.secret).update(salt).digest());
    },
  };
  return a;
}

test('with a PRF authenticator: the key is wrapped under both; cancelled keeps it, a wrong PRF drops it', async () => {
  const auth = softAuthenticator();
  const d = await PhoneDevice.unlock(PASS, at(T0));
  assert.equal(await d.remember(DEFAULT_REMEMBER_SECONDS, auth), true);
  assert.equal(await rememberedKind(), 'prf');
  assert.equal((await record()).wrapped.length, 32 + 16 + 16); // two layers
  const ok = await PhoneDevice.unlockRemembered({ ...at(T0 + 1), prf: auth });
  assert.ok(ok.device && ok.prf);
  // the non-extractable key alone does not open it (a copied profile without the authenticator)
  assert.deepEqual(await PhoneDevice.unlockRemembered(at(T0 + 1)), { device: null, reason: 'cancelled' });
  auth.cancel = true;
  assert.deepEqual(await PhoneDevice.unlockRemembered({ ...at(T0 + 1), prf: auth }), { device: null, reason: 'cancelled' });
  assert.equal(await rememberedKind(), 'prf'); // kept: the screen lock may be tried again
  auth.cancel = false;
  auth.secret = Buffer.from('22'.repeat(32), 'hex'); // another credential's output
  assert.deepEqual(await PhoneDevice.unlockRemembered({ ...at(T0 + 1), prf: auth }), { device: null, reason: 'invalid' });
  assert.equal(await rememberedKind(), 'none');
  // an authenticator that refuses to enroll: the non-extractable key alone, no error
  const refusing: PrfAuthenticator = { enroll: async () => null, evaluate: async () => null };
  assert.equal(await d.remember(DEFAULT_REMEMBER_SECONDS, refusing), false);
  assert.ok((await PhoneDevice.unlockRemembered(at(T0 + 1))).device);
  const throwing: PrfAuthenticator = { enroll: async () => { throw new Error('NotAllowedError'); }, evaluate: async () => null };
  assert.equal(await d.remember(DEFAULT_REMEMBER_SECONDS, throwing), false);
});
