// The device at rest: keystore, address and chain in IndexedDB (fake-indexeddb in node).
// Unlock re-verifies the stored chain against the pinned key and the newest head the sealed
// keystore remembers, so whoever can write IndexedDB but lacks the passphrase cannot roll
// the chain back or change it.
import { beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO } from './setup.js';
import { b64e, fromHex } from '../src/protocol/encoding.js';
import { Keystore, storage } from '../src/protocol/keystore.js';
import { DeviceRemoved, KeysteadError, PhoneDevice, VerificationFailed, WrongPassphrase } from '../src/protocol/device.js';
import { RollbackDetected } from '../src/protocol/errors.js';
import { ed25519PublicKey } from '../src/protocol/crypto.js';

const V = JSON.parse(readFileSync(join(REPO, 'tests/vectors/core/vectors.json'), 'utf8'));
const PASS = 'at rest';
const chain = (V.chain as Record<string, string>[]).map((e) => ({
  entry: b64e(fromHex(e.entry!)),
  sig: b64e(fromHex(e.sig!)),
  ...(e.device_sig ? { device_sig: b64e(fromHex(e.device_sig)) } : {}),
  ...(e.new_key_sig ? { new_key_sig: b64e(fromHex(e.new_key_sig)) } : {}),
}));
const last = V.chain.at(-1);

async function install(who: 'laptop' | 'device', opts: { entries?: typeof chain; accountKey?: Uint8Array } = {}): Promise<void> {
  const k = (n: string): string => b64e(fromHex(V.keys[`${who}_${n}`]));
  const ks = await Keystore.create(
    PASS,
    {
      device: { signing: k('signing_seed'), pre: k('pre'), ssh: k('ssh_seed') },
      account_key: b64e(opts.accountKey ?? ed25519PublicKey(fromHex(V.keys.account_key_seed))),
      seen: { seq: last.seq, head: last.digest },
    },
    1 << 14,
  );
  await storage.put({
    keystore: ks.toFile(),
    device: { server: 'https://keys.example.org', account: V.account, name: who },
    chain: opts.entries ?? chain,
  });
}

beforeEach(() => PhoneDevice.wipe());

test('unlock: the passphrase opens it; the verified chain says who this device is', async () => {
  assert.equal(await PhoneDevice.exists(), false);
  await install('laptop');
  assert.equal(await PhoneDevice.exists(), true);
  await assert.rejects(PhoneDevice.unlock('wrong'), WrongPassphrase);
  const d = await PhoneDevice.unlock(PASS);
  assert.equal(d.deviceId, V.laptop_id);
  assert.equal(d.chain.seq, last.seq);
  assert.equal(d.me().role, 'admin');
  await assert.rejects(PhoneDevice.join({ server: 'https://keys.example.org', account: V.account }, 'phone', PASS), (e: KeysteadError) => e.code === 'exists');
  await d.wipe();
  assert.equal(await PhoneDevice.exists(), false);
});

test('a device the chain removed: DeviceRemoved', async () => {
  await install('device');
  const d = await PhoneDevice.unlock(PASS);
  assert.equal(d.deviceId, V.device_id);
  assert.throws(() => d.me(), DeviceRemoved);
});

test('a stored chain cut short, changed, or under another account key is refused at unlock', async () => {
  await install('laptop', { entries: chain.slice(0, -2) });
  await assert.rejects(PhoneDevice.unlock(PASS), RollbackDetected);
  const changed = chain.map((e) => ({ ...e }));
  changed[4]!.sig = b64e(new Uint8Array(64));
  await install('laptop', { entries: changed });
  await assert.rejects(PhoneDevice.unlock(PASS), VerificationFailed);
  await install('laptop', { accountKey: ed25519PublicKey(fromHex(V.keys.new_account_key_seed)) });
  await assert.rejects(PhoneDevice.unlock(PASS), VerificationFailed);
});
