/** Items (PROTOCOL.md section 6) and epochs (section 4): associated data, writer Merkle-group
 * signatures, opening with an epoch data key, and the walk back through `previous`. */
import { b64d, b64e, concat, hex, isInt, sha256, u64be, utf8 } from './encoding.js';
import { LABELS, openSealed, verifySig } from './crypto.js';
import { FormatError, VerificationFailed } from './errors.js';
import { type CollectionInfo, epochOf } from './chain.js';
import { decryptOriginal } from './umbral.js';

const ID_RE = /^[A-Za-z0-9._:~-]{1,128}$/;
const WRITER_RE = /^[0-9a-f]{16}$/;
const GROUP = 256;

export interface SealedItem {
  id: string;
  version: number;
  epoch: number;
  ciphertext: Uint8Array;
  deleted: boolean;
  seq: number;
  writer: string;
  sig: Uint8Array;
  proof: Uint8Array;
}

export function parseItem(obj: unknown): SealedItem {
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) throw new FormatError('item: expected an object');
  const o = obj as Record<string, unknown>;
  const seq = o.seq ?? 0;
  const deleted = o.deleted ?? false;
  if (!isInt(o.version) || !isInt(o.epoch) || !isInt(seq) || o.version < 1 || o.epoch < 1 || seq < 0 || typeof deleted !== 'boolean') {
    throw new FormatError('item: version and epoch start at 1');
  }
  if (typeof o.id !== 'string' || !ID_RE.test(o.id)) throw new FormatError('invalid item id');
  const ciphertext = b64d(o.ciphertext, undefined, 'item ciphertext');
  if (ciphertext.length < 28 || ciphertext.length > 1 << 20) throw new FormatError('item ciphertext has an impossible length');
  if (typeof o.writer !== 'string' || !WRITER_RE.test(o.writer)) throw new FormatError('item: writer must be a device id');
  const proof = b64d(o.proof, undefined, 'item proof');
  if (proof.length < 4 || (proof.length - 4) % 32 || proof.length > 4 + 32 * 8) throw new FormatError('item: malformed Merkle proof');
  return {
    id: o.id,
    version: o.version,
    epoch: o.epoch,
    ciphertext,
    deleted,
    seq,
    writer: o.writer,
    sig: b64d(o.sig, 64, 'item signature'),
    proof,
  };
}

/** The wire form of an item (as the service serves it). */
export function itemToJson(it: SealedItem): Record<string, unknown> {
  return {
    id: it.id,
    version: it.version,
    epoch: it.epoch,
    ciphertext: b64e(it.ciphertext),
    deleted: it.deleted,
    seq: it.seq,
    writer: it.writer,
    sig: b64e(it.sig),
    proof: b64e(it.proof),
  };
}

const NUL = new Uint8Array([0]);

/** AD = "keystead/v2/item" ‖ 0 ‖ ACCOUNT ‖ 0 ‖ COLLECTION ‖ 0 ‖ ID ‖ 0 ‖ u64be(version) ‖
 * u64be(epoch) ‖ u8(deleted) ‖ 0 ‖ WRITER */
export function itemAd(account: string, coll: string, it: Pick<SealedItem, 'id' | 'version' | 'epoch' | 'deleted' | 'writer'>): Uint8Array {
  return concat(
    utf8(LABELS.ITEM_AD), NUL, utf8(account), NUL, utf8(coll), NUL, utf8(it.id), NUL,
    u64be(it.version), u64be(it.epoch), new Uint8Array([it.deleted ? 1 : 0]), NUL, utf8(it.writer),
  );
}

export function itemMessage(account: string, coll: string, it: SealedItem): Uint8Array {
  return concat(itemAd(account, coll, it), NUL, sha256(it.ciphertext));
}

export function itemLeaf(account: string, coll: string, it: SealedItem): Uint8Array {
  return sha256(concat(NUL, itemMessage(account, coll, it)));
}

const node = (l: Uint8Array, r: Uint8Array): Uint8Array => sha256(concat(new Uint8Array([1]), l, r));

/** Walk a proof up from the leaf to the root the writer signed; null if the proof is malformed. */
export function merkleRoot(leaf: Uint8Array, proof: Uint8Array): Uint8Array | null {
  if (proof.length < 4) return null;
  let index = (proof[0]! << 8) | proof[1]!;
  let width = (proof[2]! << 8) | proof[3]!;
  if (!(index < width && width <= GROUP)) return null;
  let n = leaf;
  let k = 4;
  while (width > 1) {
    if ((index ^ 1) < width) {
      if (k + 32 > proof.length) return null;
      const sib = proof.subarray(k, k + 32);
      k += 32;
      n = index & 1 ? node(sib, n) : node(n, sib);
    }
    index = Math.floor(index / 2);
    width = Math.floor((width + 1) / 2);
  }
  return k === proof.length ? n : null;
}

/** Checks writer signatures, each (key, root, signature) once. */
export class ItemVerifier {
  private seen = new Set<string>();
  verify(it: SealedItem, writerKey: Uint8Array, account: string, coll: string): boolean {
    const root = merkleRoot(itemLeaf(account, coll, it), it.proof);
    if (!root) return false;
    const tag = hex(writerKey) + hex(root) + hex(it.sig);
    if (this.seen.has(tag)) return true;
    if (!verifySig(writerKey, LABELS.ITEM_SIGNATURE, root, it.sig)) return false;
    this.seen.add(tag);
    return true;
  }
}

export function openItem(key: Uint8Array, account: string, coll: string, it: SealedItem): Uint8Array {
  const out = openSealed(key, it.ciphertext, itemAd(account, coll, it));
  if (!out) throw new VerificationFailed(`item ${it.id} in ${coll} failed to decrypt`);
  return out;
}

/** AD_prev(e) = "keystead/v2/epoch/previous-secret" ‖ 0 ‖ ACCOUNT ‖ 0 ‖ COLLECTION ‖ 0 ‖ u64be(e) */
export function previousAd(account: string, coll: string, epoch: number): Uint8Array {
  return concat(utf8(LABELS.EPOCH_PREVIOUS), NUL, utf8(account), NUL, utf8(coll), NUL, u64be(epoch));
}

/** Epoch `epoch - 1`'s secret key, unwrapped with epoch `epoch`'s data key. */
export function previousSecret(account: string, c: CollectionInfo, epoch: number, key: Uint8Array): Uint8Array {
  const info = epochOf(c, epoch);
  const sk = info.previous ? openSealed(key, info.previous, previousAd(account, c.name, epoch)) : null;
  if (!sk || sk.length !== 32) throw new VerificationFailed(`${c.name}: epoch ${epoch} does not open the previous secret`);
  return sk;
}

/** An items epoch's data key, with that epoch's secret key. */
export function dataKey(secret: Uint8Array, c: CollectionInfo, epoch: number): Uint8Array {
  const info = epochOf(c, epoch);
  if (!info.capsule || !info.ciphertext) throw new VerificationFailed(`${c.name} is not an items collection`);
  const key = decryptOriginal(secret, info.capsule, info.ciphertext);
  if (key.length !== 32) throw new VerificationFailed(`${c.name}: epoch ${epoch} data key has the wrong size`);
  return key;
}

/** Data keys from `newest` down to the oldest wanted epoch, every one on the way. */
export function walkBack(account: string, c: CollectionInfo, newest: number, key: Uint8Array, wanted: Set<number>): Map<number, Uint8Array> {
  const out = new Map<number, Uint8Array>([[newest, key]]);
  let e = newest;
  const done = (): boolean => [...wanted].every((w) => out.has(w));
  while (e > 1 && !done()) {
    const sk = previousSecret(account, c, e, out.get(e)!);
    e -= 1;
    out.set(e, dataKey(sk, c, e));
  }
  return out;
}
