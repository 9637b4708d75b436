// Umbral interop: Python's umbral-pre 0.11 (the service and the CLI) and the WASM build the
// app uses read each other's capsules, ciphertexts, kfrags and cfrags; and the pairing SAS.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { PYTHON, WEB } from './setup.js';
import * as bg from '@nucypher/umbral-pre/pkg-bundler/umbral_pre_wasm_bg.js';
import { fromHex, hex } from '../src/protocol/encoding.js';
import { decryptOriginal, encrypt, makeKfrag, openReencrypted, publicKeyOf, randomSecret, reencrypt, verifyKfrag } from '../src/protocol/umbral.js';
import { VerificationFailed } from '../src/protocol/errors.js';
import { shortAuthenticationString } from '../src/protocol/device.js';

function py(mode: string, input?: string): Record<string, any> {
  const r = spawnSync(PYTHON, [join(WEB, 'test', 'interop.py'), mode], { input, encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
}

test('Python makes capsule, kfrag and cfrag; JS verifies and decrypts', () => {
  const p = py('make');
  const args = {
    receivingSecret: fromHex(p.receiving_sk),
    delegating: fromHex(p.delegating_pk),
    signer: fromHex(p.signer_pk),
    capsule: fromHex(p.capsule),
    cfrag: fromHex(p.cfrag),
    ciphertext: fromHex(p.ciphertext),
  };
  assert.equal(fromHex(p.capsule).length, 105);
  assert.equal(hex(openReencrypted(args)), p.plaintext);
  assert.equal(hex(decryptOriginal(fromHex(p.delegating_sk), args.capsule, args.ciphertext)), p.plaintext);
  verifyKfrag(fromHex(p.kfrag), args.signer, args.delegating, publicKeyOf(args.receivingSecret));
  // JS re-encrypts with Python's kfrag, and opens that too.
  assert.equal(hex(openReencrypted({ ...args, cfrag: reencrypt(args.capsule, fromHex(p.kfrag)) })), p.plaintext);
  // A cfrag that does not verify is refused: wrong signer, tampered bytes.
  assert.throws(() => openReencrypted({ ...args, signer: args.delegating }), VerificationFailed);
  const bad = fromHex(p.cfrag);
  bad[bad.length - 5]! ^= 1;
  assert.throws(() => openReencrypted({ ...args, cfrag: bad }), VerificationFailed);
  // The pairing verification number agrees with keystead's own function.
  assert.equal(shortAuthenticationString(p.sas.code.toLowerCase(), fromHex(p.sas.device_key), fromHex(p.sas.account_key)), p.sas.value);
});

test('JS encrypts and makes kfrag and cfrag; Python verifies and decrypts', () => {
  const delegating = randomSecret();
  const receiving = randomSecret();
  const signer = randomSecret();
  const plaintext = new TextEncoder().encode('made in the browser \u00e9\u{1f511}');
  const [capsule, ciphertext] = encrypt(publicKeyOf(delegating), plaintext);
  const kfrag = makeKfrag(delegating, publicKeyOf(receiving), signer);
  const cfrag = reencrypt(capsule, kfrag);
  const out = py(
    'open',
    JSON.stringify({
      delegating_sk: hex(delegating),
      receiving_sk: hex(receiving),
      signer_pk: hex(publicKeyOf(signer)),
      capsule: hex(capsule),
      ciphertext: hex(ciphertext),
      kfrag: hex(kfrag),
      cfrag: hex(cfrag),
    }),
  );
  assert.equal(out.original, hex(plaintext));
  assert.equal(out.reencrypted_js_cfrag, hex(plaintext));
  assert.equal(out.reencrypted_py_cfrag, hex(plaintext));
  assert.equal(out.wrong_signer, 'refused');
  assert.equal(bg.SecretKey.fromBEBytes(delegating).toBEBytes().length, 32);
});
