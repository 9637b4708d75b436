// Known-answer vectors of tests/vectors/core/vectors.json, checked by the library written from the docs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO } from './setup.js';
import { b64d, b64e, cjson, concat, fromHex, hex, sha256, utf8 } from '../src/protocol/encoding.js';
import { LABELS, SigningKey, ed25519PublicKey, openSealed, verifySig } from '../src/protocol/crypto.js';
import { checkHead, collection, deviceIdFor, deviceStatement, epochOf, parseSignedEntry, verifyChain, type SignedEntry } from '../src/protocol/chain.js';
import { ItemVerifier, itemAd, itemLeaf, itemMessage, merkleRoot, openItem, parseItem, previousAd, walkBack } from '../src/protocol/items.js';
import { decryptOriginal, ecdsaVerify, openReencrypted, publicKeyOf, reencrypt, verifyKfrag } from '../src/protocol/umbral.js';
import { requestMessage } from '../src/protocol/client.js';
import { Keystore, deriveKey } from '../src/protocol/keystore.js';
import { SignedEnvelope } from '../src/protocol/envelope.js';
import { RollbackDetected, VerificationFailed, WrongPassphrase, FormatError } from '../src/protocol/errors.js';

const V = JSON.parse(readFileSync(join(REPO, 'tests/vectors/core/vectors.json'), 'utf8'));
const K = Object.fromEntries(Object.entries(V.keys as Record<string, string>).map(([k, v]) => [k, fromHex(v)]));
const R = Object.fromEntries(Object.entries(V.randomized as Record<string, string>).map(([k, v]) => [k, fromHex(v)]));
const accountPub = ed25519PublicKey(K.account_key_seed!);
const newAccountPub = ed25519PublicKey(K.new_account_key_seed!);
const laptopPub = ed25519PublicKey(K.laptop_signing_seed!);
const devicePub = ed25519PublicKey(K.device_signing_seed!);

function entries(): SignedEntry[] {
  return (V.chain as Record<string, string>[]).map((e) =>
    parseSignedEntry({
      entry: b64e(fromHex(e.entry!)),
      sig: b64e(fromHex(e.sig!)),
      ...(e.device_sig ? { device_sig: b64e(fromHex(e.device_sig)) } : {}),
      ...(e.new_key_sig ? { new_key_sig: b64e(fromHex(e.new_key_sig)) } : {}),
    }),
  );
}

test('chain: entry bytes are CJSON of the seven fields, digests and prev links match', () => {
  for (const e of V.chain) {
    const bytes = cjson({ v: 2, account: V.account, seq: e.seq, prev: e.prev, time: e.time, type: e.type, body: e.body });
    assert.equal(hex(bytes), e.entry);
    assert.equal(hex(sha256(bytes)), e.digest);
  }
});

test('chain: full verification pinned to generation 0, rotation followed', () => {
  const state = verifyChain(entries(), V.account, accountPub);
  assert.equal(state.seq, V.chain.length - 1);
  assert.equal(state.head, V.chain.at(-1).digest);
  assert.equal(hex(state.accountKey), hex(accountPub));
  assert.equal(state.keyGeneration, 1);
  assert.equal(hex(state.signingKey), hex(newAccountPub));
  assert.equal(hex(state.kfragSigner), hex(publicKeyOf(K.new_kfrag_signer!)));
  assert.equal(hex(state.sharingKeys.get(1)!), hex(publicKeyOf(K.sharing_key_1!)));
  const member = state.devices.get(V.device_id)!;
  assert.ok(member.removedSeq !== null, 'the member is removed');
  assert.equal(state.devices.get(V.laptop_id)!.removedSeq, null);
  assert.equal(deviceIdFor(devicePub), V.device_id);
  assert.equal(deviceIdFor(laptopPub), V.laptop_id);
  const body = V.chain.find((e: { type: string; body: { id?: string } }) => e.type === 'device-added' && e.body.id === V.device_id).body;
  assert.equal(hex(deviceStatement(V.account, body)), V.device_statement);
});

test('chain: refused when pinned to another key, tampered, unlinked, or rolled back', () => {
  assert.throws(() => verifyChain(entries(), V.account, newAccountPub), VerificationFailed);
  assert.throws(() => verifyChain(entries(), 'bob', accountPub), VerificationFailed);
  const bad = entries();
  bad[3] = { ...bad[3]!, sig: bad[3]!.sig.map((b, i) => (i === 0 ? b ^ 1 : b)) };
  assert.throws(() => verifyChain(bad, V.account, accountPub), VerificationFailed);
  const noNewSig = entries();
  const rot = noNewSig.findIndex((e) => e.newKeySig);
  noNewSig[rot] = { ...noNewSig[rot]!, newKeySig: null };
  assert.throws(() => verifyChain(noNewSig, V.account, accountPub), VerificationFailed);
  const skipped = entries();
  skipped.splice(2, 1);
  assert.throws(() => verifyChain(skipped, V.account, accountPub), VerificationFailed);
  const full = verifyChain(entries(), V.account, accountPub);
  const short = verifyChain(entries().slice(0, 5), V.account, accountPub);
  assert.throws(() => checkHead(short, full.seq, full.head), RollbackDetected);
  assert.throws(() => checkHead(full, 4, V.chain[3].digest), RollbackDetected);
  checkHead(full, 4, V.chain[4].digest);
});

test('epochs: data keys open from the capsules; previous wraps epoch 1 secret; walk back', () => {
  assert.equal(hex(decryptOriginal(K.epoch_1_secret!, R.epoch_1_capsule!, R.epoch_1_ciphertext!)), V.keys.epoch_1_data_key);
  assert.equal(hex(decryptOriginal(K.epoch_2_secret!, R.epoch_2_capsule!, R.epoch_2_ciphertext!)), V.keys.epoch_2_data_key);
  const p = V.previous;
  assert.equal(hex(previousAd(p.account, p.collection, p.epoch)), p.ad);
  assert.equal(hex(openSealed(K.epoch_2_data_key!, fromHex(p.sealed), fromHex(p.ad))!), p.plaintext);
  const state = verifyChain(entries(), V.account, accountPub);
  const c = collection(state, p.collection);
  assert.equal(hex(epochOf(c, 2).publicKey), hex(publicKeyOf(K.epoch_2_secret!)));
  const keys = walkBack(V.account, c, 2, K.epoch_2_data_key!, new Set([1]));
  assert.equal(hex(keys.get(1)!), V.keys.epoch_1_data_key);
  assert.throws(() => walkBack(V.account, c, 2, K.epoch_1_data_key!, new Set([1])), VerificationFailed);
});

test('items: AD, message, leaf, proof, writer signature, opening', () => {
  const it = V.item;
  const item = parseItem({ id: it.id, version: it.version, epoch: it.epoch, ciphertext: b64e(fromHex(it.ciphertext)), deleted: it.deleted, seq: 0, writer: it.writer, sig: b64e(fromHex(it.sig)), proof: b64e(fromHex(it.proof)) });
  assert.equal(hex(itemAd(it.account, it.collection, item)), it.ad);
  assert.equal(hex(itemMessage(it.account, it.collection, item)), it.message);
  assert.equal(hex(itemLeaf(it.account, it.collection, item)), it.leaf);
  assert.ok(new ItemVerifier().verify(item, laptopPub, it.account, it.collection));
  assert.ok(!new ItemVerifier().verify(item, devicePub, it.account, it.collection), 'another writer key');
  assert.ok(!new ItemVerifier().verify({ ...item, version: item.version + 1 }, laptopPub, it.account, it.collection), 'replayed as a newer version');
  assert.equal(hex(openItem(K.epoch_2_data_key!, it.account, it.collection, item)), it.plaintext);
  assert.throws(() => openItem(K.epoch_2_data_key!, it.account, 'notes', item), VerificationFailed);

  const g = V.item_group;
  const verifier = new ItemVerifier();
  for (const x of g.items) {
    const gi = parseItem({ ...x, ciphertext: b64e(fromHex(x.ciphertext)), seq: 0, sig: b64e(fromHex(g.sig)), proof: b64e(fromHex(x.proof)) });
    assert.equal(hex(itemLeaf(g.account, g.collection, gi)), x.leaf);
    assert.equal(hex(merkleRoot(fromHex(x.leaf), fromHex(x.proof))!), g.root);
    assert.ok(verifier.verify(gi, laptopPub, g.account, g.collection));
    assert.equal(hex(openItem(K.epoch_2_data_key!, g.account, g.collection, gi)), x.plaintext);
  }
  assert.ok(verifySig(laptopPub, LABELS.ITEM_SIGNATURE, fromHex(g.root), fromHex(g.sig)));
  const proof = fromHex(g.items[0].proof);
  assert.equal(merkleRoot(fromHex(g.items[0].leaf), concat(proof, new Uint8Array(32))), null, 'unused proof bytes');
  const d = V.deletion;
  assert.equal(hex(itemAd(V.account, 'passwords', d)), d.ad);
  assert.throws(() => parseItem({ id: 'a b', version: 1, epoch: 1, ciphertext: b64e(new Uint8Array(28)), writer: V.laptop_id, sig: b64e(new Uint8Array(64)), proof: 'AAAAAQ' }), FormatError);
});

test('grants: the kfrag verifies; a cfrag made with it verifies and opens the sealed-key record', () => {
  const laptopPre = publicKeyOf(K.laptop_pre!);
  const epoch2 = publicKeyOf(K.epoch_2_secret!);
  const newSigner = publicKeyOf(K.new_kfrag_signer!);
  verifyKfrag(R.epoch_2_kfrag_to_laptop!, newSigner, epoch2, laptopPre);
  assert.throws(() => verifyKfrag(R.epoch_2_kfrag_to_laptop!, publicKeyOf(K.kfrag_signer!), epoch2, laptopPre), VerificationFailed);
  const s = V.sealed_key;
  const rec = JSON.parse(new TextDecoder().decode(fromHex(s.bytes)));
  assert.equal(hex(cjson(rec)), s.bytes);
  assert.deepEqual([rec.v, rec.owner, rec.key, rec.epoch], [2, s.owner, s.key, s.epoch]);
  const capsule = b64d(rec.capsule, 105);
  const ct = b64d(rec.ciphertext);
  assert.equal(hex(decryptOriginal(K.epoch_2_secret!, capsule, ct)), s.plaintext);
  const cfrag = reencrypt(capsule, R.epoch_2_kfrag_to_laptop!);
  const args = { receivingSecret: K.laptop_pre!, delegating: epoch2, signer: newSigner, capsule, cfrag, ciphertext: ct };
  assert.equal(hex(openReencrypted(args)), s.plaintext);
  // The old generation's kfrag signer does not vouch for it: refused, nothing decrypted.
  assert.throws(() => openReencrypted({ ...args, signer: publicKeyOf(K.kfrag_signer!) }), VerificationFailed);
  // A cfrag for another capsule is refused.
  assert.throws(() => openReencrypted({ ...args, capsule: R.epoch_2_capsule! }), VerificationFailed);
});

test('request: the signing message and signature', async () => {
  const r = V.request;
  const msg = requestMessage({ method: r.method, origin: r.origin, path: r.path, digest: r.digest, time: r.time, nonce: r.nonce, account: r.account, device: r.device });
  assert.equal(hex(msg), r.message);
  for (const webcrypto of [true, false]) {
    const key = await SigningKey.fromSeed(K.laptop_signing_seed!, { webcrypto });
    assert.equal(hex(await key.sign(LABELS.REQUEST, msg)), r.sig);
  }
  assert.ok((await SigningKey.fromSeed(K.laptop_signing_seed!)).inWebCrypto, 'node has Ed25519 in WebCrypto');
});

test('keystore: scrypt key, contents, wrong passphrase', async () => {
  const ks = V.keystore;
  assert.equal(hex(await deriveKey(ks.passphrase, ks.file.kdf)), ks.key);
  const opened = await Keystore.open(ks.file, ks.passphrase);
  assert.deepEqual(opened.data, JSON.parse(new TextDecoder().decode(fromHex(ks.contents))));
  await assert.rejects(Keystore.open(ks.file, 'wrong'), WrongPassphrase);
  await assert.rejects(Keystore.open({ ...ks.file, 'keystead-keystore': 1 }, ks.passphrase), /version 1/);
  const again = await Keystore.open(opened.toFile(), ks.passphrase);
  assert.deepEqual(again.data, opened.data);
});

test('bundle digest, recovery signature and recovery blob', () => {
  const b = V.bundle;
  const digest = concat(utf8('keystead/v2/bundle'), new Uint8Array([0]), sha256(cjson(b.body)));
  assert.equal(hex(digest), b.digest);
  const recoveryPub = publicKeyOf(K.recovery_key!);
  assert.ok(ecdsaVerify(recoveryPub, digest, fromHex(b.recovery_sig)));
  assert.ok(!ecdsaVerify(recoveryPub, digest.slice(1), fromHex(b.recovery_sig)));
  const blob = R.recovery_blob!;
  assert.equal(hex(decryptOriginal(K.recovery_key!, blob.slice(0, 105), blob.slice(105))), V.account_secrets);
});

test('signed envelope: the TypeScript envelope makes and reads the vector bytes', async () => {
  const E = V.signed_envelope as Record<string, string>;
  const key = await SigningKey.fromSeed(K.laptop_signing_seed!);
  const made = await SignedEnvelope.sign(key, E.purpose!, E.signer!, fromHex(E.body!));
  assert.equal(hex(made.toBytes()), E.wire);
  assert.equal(hex(made.signature), E.sig);
  const read = SignedEnvelope.fromBytes(fromHex(E.wire!), E.purpose!);
  assert.equal(read.signer, E.signer);
  assert.equal(hex(read.verify(laptopPub)), E.body);
  assert.throws(() => read.verify(devicePub), VerificationFailed);
  assert.throws(() => SignedEnvelope.fromBytes(fromHex(E.wire!), 'keystead/v2/confirm/answer'), FormatError);
});
