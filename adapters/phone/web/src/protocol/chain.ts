/** The account chain (PROTOCOL.md section 3): full verification from entry 0 with the
 * generation-0 account key pinned, key rotations followed, rollbacks and forks refused. */
import {
  b64d,
  b64e,
  cjson,
  fingerprint,
  isInt,
  parseCanonical,
  sameKeys,
  sha256,
  sha256hex,
  hex,
} from './encoding.js';
import { LABELS, requireSig } from './crypto.js';
import { FormatError, RollbackDetected, UnsupportedVersion, VerificationFailed } from './errors.js';
import { checkPublicKey } from './umbral.js';

export const NAME_RE = /^[a-z0-9][a-z0-9._-]{0,62}$/;
export const COLLECTION_RE = /^[a-z_][a-z0-9_./-]{0,127}$/;
const MAX_ENTRY_BYTES = 16 * 1024;
const PREVIOUS_SIZE = 60;
const DATA_KEY_CT_SIZE = 72;

export interface SignedEntryJson {
  entry: string;
  sig: string;
  device_sig?: string;
  new_key_sig?: string;
}

export interface SignedEntry {
  entry: Uint8Array;
  sig: Uint8Array;
  deviceSig: Uint8Array | null;
  newKeySig: Uint8Array | null;
  digest: string;
}

export function parseSignedEntry(obj: unknown): SignedEntry {
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) throw new FormatError('chain entry: not an object');
  const o = obj as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (!['entry', 'sig', 'device_sig', 'new_key_sig'].includes(k)) throw new FormatError('chain entry: unexpected fields');
  }
  const entry = b64d(o.entry, undefined, 'chain entry');
  if (entry.length > MAX_ENTRY_BYTES) throw new FormatError('chain entry too large');
  return {
    entry,
    sig: b64d(o.sig, 64, 'chain signature'),
    deviceSig: o.device_sig === undefined || o.device_sig === null ? null : b64d(o.device_sig, 64, 'device signature'),
    newKeySig: o.new_key_sig === undefined || o.new_key_sig === null ? null : b64d(o.new_key_sig, 64, 'new key signature'),
    digest: sha256hex(entry),
  };
}

export function signedEntryToJson(e: SignedEntry): SignedEntryJson {
  const out: SignedEntryJson = { entry: b64e(e.entry), sig: b64e(e.sig) };
  if (e.deviceSig) out.device_sig = b64e(e.deviceSig);
  if (e.newKeySig) out.new_key_sig = b64e(e.newKeySig);
  return out;
}

export interface DeviceInfo {
  id: string;
  name: string;
  role: 'admin' | 'member';
  scopes: string[];
  signingKey: Uint8Array;
  preKey: Uint8Array;
  sshKey: Uint8Array;
  addedSeq: number;
  removedSeq: number | null;
}

export interface EpochInfo {
  epoch: number;
  publicKey: Uint8Array;
  seq: number;
  capsule: Uint8Array | null;
  ciphertext: Uint8Array | null;
  previous: Uint8Array | null;
}

export interface CollectionInfo {
  name: string;
  kind: 'items' | 'keys';
  epochs: Map<number, EpochInfo>;
}

export interface ChainState {
  account: string;
  /** Generation 0's key: the identity devices and relying parties pin. */
  accountKey: Uint8Array;
  /** The current generation's key, which signs every new entry. */
  signingKey: Uint8Array;
  keyGeneration: number;
  kfragSigner: Uint8Array;
  recoveryKey: Uint8Array;
  devices: Map<string, DeviceInfo>;
  collections: Map<string, CollectionInfo>;
  sharingKeys: Map<number, Uint8Array>;
  seq: number;
  head: string;
  digests: string[];
}

export const deviceIdFor = (signingKey: Uint8Array): string => hex(sha256(signingKey)).slice(0, 16);

export function currentEpoch(c: CollectionInfo): EpochInfo {
  let best: EpochInfo | undefined;
  for (const e of c.epochs.values()) if (!best || e.epoch > best.epoch) best = e;
  if (!best) throw new VerificationFailed(`${c.name}: no epoch in the chain`);
  return best;
}

export function collection(state: ChainState, name: string): CollectionInfo {
  const c = state.collections.get(name);
  if (!c) throw new VerificationFailed(`no collection ${JSON.stringify(name)} in the account chain`);
  return c;
}

export function epochOf(c: CollectionInfo, epoch: number): EpochInfo {
  const e = c.epochs.get(epoch);
  if (!e) throw new VerificationFailed(`${c.name}: epoch ${epoch} is not in the chain`);
  return e;
}

/** What a joining device countersigns (role and scopes are the admin's decision). */
export function deviceStatement(account: string, body: Record<string, unknown>): Uint8Array {
  return cjson({
    account,
    id: body.id ?? null,
    name: body.name ?? null,
    signing_key: body.signing_key ?? null,
    pre_key: body.pre_key ?? null,
    ssh_key: body.ssh_key ?? null,
  });
}

interface Parsed {
  seq: number;
  prev: string;
  time: number;
  type: string;
  account: string;
  body: Record<string, unknown>;
}

function parseEntry(raw: Uint8Array): Parsed {
  const obj = parseCanonical(raw, 'chain entry', MAX_ENTRY_BYTES);
  if (obj.v !== 2) {
    throw new UnsupportedVersion(`chain entry of protocol version ${JSON.stringify(obj.v)}; this client speaks version 2`);
  }
  if (!sameKeys(obj, ['v', 'account', 'seq', 'prev', 'time', 'type', 'body'])) throw new FormatError('chain entry: unexpected fields');
  if (!isInt(obj.seq) || !isInt(obj.time)) throw new FormatError('chain entry: seq and time must be integers');
  const body = obj.body;
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new FormatError('chain entry: body must be an object');
  if (typeof obj.prev !== 'string' || typeof obj.type !== 'string' || typeof obj.account !== 'string') {
    throw new FormatError('chain entry: malformed');
  }
  return { seq: obj.seq, prev: obj.prev, time: obj.time, type: obj.type, account: obj.account, body: body as Record<string, unknown> };
}

const pk = (body: Record<string, unknown>, k: string): Uint8Array => checkPublicKey(b64d(body[k], 33, k), k);
const vk = (body: Record<string, unknown>, k: string): Uint8Array => b64d(body[k], 32, k);
function str(body: Record<string, unknown>, k: string): string {
  const v = body[k] ?? '';
  if (typeof v !== 'string') throw new FormatError(`chain entry: ${k} must be a string`);
  return v;
}
function scopes(v: unknown): string[] {
  if (!Array.isArray(v) || v.length === 0) throw new FormatError('a device needs a non-empty list of scopes');
  for (const s of v) if (typeof s !== 'string' || !COLLECTION_RE.test(s)) throw new FormatError('invalid scope');
  return [...new Set(v as string[])].sort();
}

/** Verify a whole chain from its first entry, against the pinned generation-0 key if given. */
export function verifyChain(entries: SignedEntry[], account: string, pinnedKey: Uint8Array | null): ChainState {
  const first = entries[0];
  if (!first) throw new VerificationFailed('empty chain');
  const obj = parseEntry(first.entry);
  if (obj.type !== 'account-created' || obj.seq !== 0 || obj.prev !== '') {
    throw new VerificationFailed('chain does not start with account-created');
  }
  if (obj.account !== account) throw new VerificationFailed('chain is for another account');
  const key = vk(obj.body, 'account_key');
  if (pinnedKey && hex(key) !== hex(pinnedKey)) {
    throw new VerificationFailed(`account key ${fingerprint(key)} is not the pinned ${fingerprint(pinnedKey)}`);
  }
  requireSig(key, LABELS.CHAIN_ENTRY, first.entry, first.sig, 'chain entry 0');
  if (first.deviceSig || first.newKeySig) throw new FormatError('account-created carries only the account signature');
  let state: ChainState = {
    account,
    accountKey: key,
    signingKey: key,
    keyGeneration: 0,
    kfragSigner: pk(obj.body, 'kfrag_signer'),
    recoveryKey: pk(obj.body, 'recovery_key'),
    devices: new Map(),
    collections: new Map(),
    sharingKeys: new Map([[0, pk(obj.body, 'sharing_key')]]),
    seq: 0,
    head: first.digest,
    digests: [first.digest],
  };
  for (const e of entries.slice(1)) state = applyEntry(state, e);
  return state;
}

/** Verify `entries` as the continuation of `state` (which is not modified). */
export function extendChain(state: ChainState, entries: SignedEntry[]): ChainState {
  for (const e of entries) state = applyEntry(state, e);
  return state;
}

function applyEntry(prevState: ChainState, e: SignedEntry): ChainState {
  // Always the current generation's key: after a rotation the old key signs nothing more.
  requireSig(prevState.signingKey, LABELS.CHAIN_ENTRY, e.entry, e.sig, `chain entry ${prevState.seq + 1}`);
  const obj = parseEntry(e.entry);
  if (obj.account !== prevState.account) throw new VerificationFailed('chain entry is for another account');
  if (obj.seq !== prevState.seq + 1) throw new VerificationFailed(`chain entry has sequence ${obj.seq}, expected ${prevState.seq + 1}`);
  if (obj.prev !== prevState.head) throw new VerificationFailed('chain entry does not link to the previous entry');
  const s: ChainState = {
    ...prevState,
    devices: new Map(prevState.devices),
    collections: new Map(prevState.collections),
    sharingKeys: new Map(prevState.sharingKeys),
    seq: obj.seq,
    head: e.digest,
    digests: [...prevState.digests, e.digest],
  };
  const { body, type, seq } = obj;
  if (e.newKeySig && type !== 'account-key-rotated') throw new FormatError('only account-key-rotated entries carry a new key signature');
  if (e.deviceSig && type !== 'device-added') throw new FormatError('only device-added entries carry a countersignature');
  switch (type) {
    case 'account-key-rotated': {
      if (!sameKeys(body, ['generation', 'account_key', 'kfrag_signer'])) {
        throw new FormatError('account-key-rotated: generation, account_key, kfrag_signer');
      }
      if (!isInt(body.generation) || body.generation !== prevState.keyGeneration + 1) {
        throw new VerificationFailed('account key generations must count up by one');
      }
      const nk = vk(body, 'account_key');
      if (!e.newKeySig) throw new VerificationFailed('a key rotation lacks the new key signature');
      requireSig(nk, LABELS.CHAIN_KEY_ROTATION, e.entry, e.newKeySig, 'key rotation');
      s.signingKey = nk;
      s.keyGeneration = body.generation;
      s.kfragSigner = pk(body, 'kfrag_signer');
      break;
    }
    case 'device-added': {
      const signing = vk(body, 'signing_key');
      const id = body.id;
      if (typeof id !== 'string' || id !== deviceIdFor(signing) || s.devices.has(id)) {
        throw new VerificationFailed('device id is not fresh or does not match its key');
      }
      if (!e.deviceSig) throw new VerificationFailed('device entry lacks the device countersignature');
      requireSig(signing, LABELS.CHAIN_DEVICE_COUNTERSIGN, deviceStatement(s.account, body), e.deviceSig, 'device countersignature');
      const name = str(body, 'name');
      if (!NAME_RE.test(name)) throw new FormatError(`invalid device name ${JSON.stringify(name)}`);
      for (const d of s.devices.values()) {
        if (d.removedSeq === null && d.name === name) throw new VerificationFailed(`a live device is already named ${name}`);
      }
      if (body.role !== 'admin' && body.role !== 'member') throw new FormatError('unknown role');
      s.devices.set(id, {
        id,
        name,
        role: body.role,
        scopes: scopes(body.scopes),
        signingKey: signing,
        preKey: pk(body, 'pre_key'),
        sshKey: b64d(body.ssh_key, 32, 'ssh_key'),
        addedSeq: seq,
        removedSeq: null,
      });
      break;
    }
    case 'device-removed': {
      const d = s.devices.get(str(body, 'id'));
      if (!d || d.removedSeq !== null) throw new VerificationFailed('removing a device that is not live');
      s.devices.set(d.id, { ...d, removedSeq: seq });
      break;
    }
    case 'scopes-changed': {
      const d = s.devices.get(str(body, 'id'));
      if (!d || d.removedSeq !== null) throw new VerificationFailed('changing scopes of a device that is not live');
      s.devices.set(d.id, { ...d, scopes: scopes(body.scopes) });
      break;
    }
    case 'collection-created': {
      const name = str(body, 'name');
      if (!COLLECTION_RE.test(name)) throw new FormatError('invalid collection name');
      if (s.collections.has(name)) throw new VerificationFailed(`collection ${name} already exists`);
      if ((body.kind !== 'items' && body.kind !== 'keys') || !sameKeys(body, ['name', 'kind'])) {
        throw new FormatError('collection-created: a name and a kind (items or keys)');
      }
      s.collections.set(name, { name, kind: body.kind, epochs: new Map() });
      break;
    }
    case 'epoch': {
      const c = s.collections.get(str(body, 'collection'));
      if (!c) throw new VerificationFailed('epoch for an unknown collection');
      const last = c.epochs.size ? Math.max(...c.epochs.keys()) : 0;
      if (!isInt(body.epoch) || body.epoch !== last + 1) throw new VerificationFailed('epochs must count up by one');
      const epoch = body.epoch;
      let info: EpochInfo;
      if (c.kind === 'keys') {
        if (!sameKeys(body, ['collection', 'epoch', 'public_key'])) throw new FormatError('a keys epoch carries only its public key');
        info = { epoch, publicKey: pk(body, 'public_key'), seq, capsule: null, ciphertext: null, previous: null };
      } else {
        const want = ['collection', 'epoch', 'public_key', 'capsule', 'ciphertext'];
        if (epoch > 1) want.push('previous');
        if (!sameKeys(body, want)) throw new FormatError(`an items epoch carries ${want.join(', ')}`);
        info = {
          epoch,
          publicKey: pk(body, 'public_key'),
          seq,
          capsule: b64d(body.capsule, 105, 'capsule'),
          ciphertext: b64d(body.ciphertext, DATA_KEY_CT_SIZE, 'epoch key ciphertext'),
          previous: epoch > 1 ? b64d(body.previous, PREVIOUS_SIZE, 'previous secret') : null,
        };
      }
      const epochs = new Map(c.epochs);
      epochs.set(epoch, info);
      s.collections.set(c.name, { ...c, epochs });
      break;
    }
    case 'sharing-key': {
      const gen = body.generation;
      if (!isInt(gen) || gen !== Math.max(...s.sharingKeys.keys()) + 1) {
        throw new VerificationFailed('sharing key generations must count up by one');
      }
      s.sharingKeys.set(gen, pk(body, 'public_key'));
      break;
    }
    default:
      throw new FormatError(`unknown chain entry type ${JSON.stringify(type)}`);
  }
  return s;
}

/** Refuse a chain shorter than, or forking from, the newest head seen (RollbackDetected). */
export function checkHead(state: ChainState, seenSeq: number, seenHead: string): void {
  if (state.seq < seenSeq) {
    throw new RollbackDetected(`the service served the chain up to entry ${state.seq}, but this device has seen entry ${seenSeq}`);
  }
  if (seenSeq >= 0 && seenHead && state.digests[seenSeq] !== seenHead) {
    throw new RollbackDetected('the service served a chain that forks from the one seen before');
  }
}
