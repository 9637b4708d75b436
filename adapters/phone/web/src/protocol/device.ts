/** The phone as a Keystead protocol-v2 device: join, unlock, sync, prompts, TOTP, passwords.
 *
 * Written from docs/PROTOCOL.md, docs/FORMAT.md, docs/second_factor.md and docs/passwords.md.
 * Keys are made in the browser and kept in IndexedDB sealed under the passphrase; the signing
 * key is a non-extractable WebCrypto key while the device is unlocked (where the browser has
 * Ed25519). Every chain, item, cfrag and prompt is verified before anything is used or stored. */
import { b64d, b64e, cjson, concat, fingerprint, fromUtf8, parseCanonical, randomBytes, sameKeys, sha256, sha256hex, utf8 } from './encoding.js';
import { LABELS, SigningKey, ed25519PublicKey } from './crypto.js';
import {
  type ChainState,
  type CollectionInfo,
  type DeviceInfo,
  type SignedEntry,
  type SignedEntryJson,
  NAME_RE,
  checkHead,
  collection,
  currentEpoch,
  deviceIdFor,
  deviceStatement,
  epochOf,
  extendChain,
  parseSignedEntry,
  signedEntryToJson,
  verifyChain,
} from './chain.js';
import { ServiceClient, pathOf } from './client.js';
import { answerPrompt, checkAgainstEnvelope, parseEnvelope, parsePrompt, type Decision } from './confirm.js';
import { DeviceRemoved, FormatError, KeysteadError, ServiceError, VerificationFailed, WrongPassphrase } from './errors.js';
import { ItemVerifier, type SealedItem, itemToJson, openItem, parseItem, previousSecret, walkBack } from './items.js';
import { DEFAULT_SCRYPT_N, Keystore, type KeystoreContents, type KeystoreFile, storage } from './keystore.js';
import { type PrfAuthenticator, type Recall, DEFAULT_REMEMBER_SECONDS, forgetUnlock, recallUnlock, rememberUnlock } from './remember.js';
import { parseVaultItem, type VaultEntry } from './passwords.js';
import { type OtpAuth, parseTotpItem, totpCode } from './totp.js';
import { decryptOriginal, openReencrypted, publicKeyOf, randomSecret, umbralReady } from './umbral.js';

export { KeysteadError, DeviceRemoved, WrongPassphrase, VerificationFailed } from './errors.js';
export { configureUmbral } from './umbral.js';
export { browserPrf, rememberedKind, DEFAULT_REMEMBER_SECONDS, MAX_REMEMBER_SECONDS, type PrfAuthenticator } from './remember.js';

export interface Invite {
  server: string;
  account: string;
  fingerprint?: string;
}

/** `#join=<account>&fp=<fp>` (form-urlencoded, docs/PHONE.md section 4); the server is the
 * page's own origin. */
export function parseInvite(fragment: string, origin: string): Invite {
  const params = new URLSearchParams(fragment.replace(/^#/, ''));
  const account = params.get('join');
  if (!account || !NAME_RE.test(account)) throw new FormatError('the invite names no valid account (#join=ACCOUNT)');
  const fp = params.get('fp');
  if (fp !== null && !/^SHA256:[A-Za-z0-9+/]{43}$/.test(fp)) throw new FormatError('the invite fingerprint is not SHA256:<base64>');
  const server = new URL(origin).origin;
  return fp === null ? { server, account } : { server, account, fingerprint: fp };
}

export interface JoinTicket {
  code: string;
  /** The short authentication string, `ddd ddd`, that the admin compares. */
  verification: string;
  /** This device's signing key fingerprint (what `keystead device approve` shows). */
  fingerprint: string;
  /** The account's pinned (generation 0) key fingerprint. */
  accountFingerprint: string;
}

export interface Prompt {
  id: string;
  rp: string;
  message: string;
  /** The choices to show, sorted; null without number matching. The RP's number is never here. */
  numbers: number[] | null;
  created: number;
  expires: number;
  spoolId: number;
}

export interface TotpEntry {
  id: string;
  issuer: string;
  label: string;
  code(now?: number): string;
  period: number;
  digits: number;
  algorithm: string;
}

export interface PasswordEntry {
  id: string;
  title: string;
  url: string;
  username: string;
  password: string;
  notes: string;
  type: VaultEntry['type'];
  folder: string;
  otherUrls: string[];
  otpauth: string | null;
}

export interface DeviceOptions {
  /** scrypt N of a new keystore (power of two, 2^14..2^20); default 2^17 as FORMAT.md. */
  scryptN?: number;
  /** Unix seconds; tests move it. */
  clock?: () => number;
}

interface DeviceRecord {
  server: string;
  account: string;
  name: string;
}

const K_KEYSTORE = 'keystore';
const K_DEVICE = 'device';
const K_CHAIN = 'chain';
const K_ITEMS = 'items:'; // + collection: the sealed items of the last sync (what the service serves)

/** SAS of PROTOCOL.md section 12: first 8 bytes of SHA256(label ‖ 0 ‖ CODE ‖ 0 ‖ device key ‖
 * generation-0 account key) as a big-endian integer, mod 10^6, as `ddd ddd`. */
export function shortAuthenticationString(code: string, deviceKey: Uint8Array, accountKey: Uint8Array): string {
  const d = sha256(concat(utf8(LABELS.SAS_LABEL), new Uint8Array([0]), utf8(code.trim().toUpperCase()), new Uint8Array([0]), deviceKey, accountKey));
  const n = Number(new DataView(d.buffer, d.byteOffset, 8).getBigUint64(0) % 1000000n);
  return `${String(Math.floor(n / 1000)).padStart(3, '0')} ${String(n % 1000).padStart(3, '0')}`;
}

interface Received {
  prompt: Prompt;
  bytes: Uint8Array;
}

interface CollectionCache {
  cursor: number;
  items: Map<string, { item: SealedItem; plaintext: Uint8Array }>;
}

async function fetchChain(client: ServiceClient, account: string, after: number): Promise<SignedEntry[]> {
  const resp = await client.request<{ entries?: unknown }>('GET', pathOf('accounts', account, 'chain'), { query: { after }, signed: false });
  if (!Array.isArray(resp.entries)) throw new FormatError('chain: expected {"entries": [...]}');
  return resp.entries.map(parseSignedEntry);
}

export class PhoneDevice {
  readonly account: string;
  readonly name: string;
  readonly server: string;
  readonly deviceId: string;
  private clientSigned: ServiceClient;
  private state: ChainState;
  private entries: SignedEntry[];
  private verifier = new ItemVerifier();
  private received = new Map<number, Received | null>();
  private cursor = 0;
  private caches = new Map<string, CollectionCache>();
  private problemList: KeysteadError[] = [];
  private clock: () => number;
  private chainLock: Promise<void> = Promise.resolve();
  private collectionLocks = new Map<string, Promise<void>>();
  /** True when the last read could not reach the service and used what this browser kept. */
  offline = false;

  private constructor(
    rec: DeviceRecord,
    private keystore: Keystore,
    private signing: SigningKey,
    private preSecret: Uint8Array,
    entries: SignedEntry[],
    state: ChainState,
    clock: () => number,
  ) {
    this.account = rec.account;
    this.name = rec.name;
    this.server = rec.server;
    this.deviceId = deviceIdFor(signing.publicKey);
    this.entries = entries;
    this.state = state;
    this.clock = clock;
    this.clientSigned = new ServiceClient(rec.server, { account: rec.account, deviceId: this.deviceId, key: signing }, clock);
  }

  /** Whether a keystore is in this browser's IndexedDB. */
  static async exists(): Promise<boolean> {
    return (await storage.get(K_KEYSTORE)) !== undefined;
  }

  /** Create this device's keys, verify the account chain (pinned to the invite's fingerprint),
   * post the pairing request and keep the sealed keystore. Refuses if a device exists here. */
  static async join(invite: Invite, name: string, passphrase: string, opts: DeviceOptions = {}): Promise<{ device: PhoneDevice; ticket: JoinTicket }> {
    await umbralReady();
    if (!NAME_RE.test(name)) throw new FormatError('a device name is 1 to 63 of a-z, 0-9, ".", "_", "-", starting with a letter or digit');
    if (!passphrase) throw new KeysteadError('bad_passphrase', 'choose a passphrase');
    if (await PhoneDevice.exists()) throw new KeysteadError('exists', 'this browser already holds a Keystead device; wipe it first');
    const clock = opts.clock ?? (() => Date.now() / 1000);
    const anon = new ServiceClient(invite.server, null, clock);
    const entries = await fetchChain(anon, invite.account, -1);
    const state = verifyChain(entries, invite.account, null);
    const accountFp = fingerprint(state.accountKey);
    if (invite.fingerprint !== undefined && invite.fingerprint !== accountFp) {
      throw new VerificationFailed(`the service serves account ${invite.account} with key ${accountFp}, not the invite's ${invite.fingerprint}`);
    }
    const signingSeed = randomBytes(32);
    const pre = randomSecret();
    const sshSeed = randomBytes(32);
    const signingPub = ed25519PublicKey(signingSeed);
    const body = {
      id: deviceIdFor(signingPub),
      name,
      signing_key: b64e(signingPub),
      pre_key: b64e(publicKeyOf(pre)),
      ssh_key: b64e(ed25519PublicKey(sshSeed)),
    };
    const signing = await SigningKey.fromSeed(signingSeed);
    const statementSig = await signing.sign(LABELS.CHAIN_DEVICE_COUNTERSIGN, deviceStatement(invite.account, body));
    const resp = await anon.request<{ code?: unknown; token?: unknown }>('POST', pathOf('accounts', invite.account, 'pairing'), {
      body: { device: body, statement_sig: b64e(statementSig) },
      signed: false,
    });
    if (typeof resp.code !== 'string' || typeof resp.token !== 'string') throw new FormatError('pairing: expected {code, token}');
    const data: KeystoreContents = {
      device: { signing: b64e(signingSeed), pre: b64e(pre), ssh: b64e(sshSeed) },
      account_key: b64e(state.accountKey),
      seen: { seq: state.seq, head: state.head },
      pairing: { code: resp.code, token: resp.token },
    };
    const keystore = await Keystore.create(passphrase, data, opts.scryptN ?? DEFAULT_SCRYPT_N);
    const rec: DeviceRecord = { server: anon.server, account: invite.account, name };
    await storage.put({ [K_KEYSTORE]: keystore.toFile(), [K_DEVICE]: rec, [K_CHAIN]: entries.map(signedEntryToJson) });
    const device = new PhoneDevice(rec, keystore, signing, pre, entries, state, clock);
    return {
      device,
      ticket: {
        code: resp.code,
        verification: shortAuthenticationString(resp.code, signingPub, state.accountKey),
        fingerprint: fingerprint(signingPub),
        accountFingerprint: accountFp,
      },
    };
  }

  /** Open the keystore in IndexedDB; `WrongPassphrase` if the passphrase does not open it. */
  static async unlock(passphrase: string, opts: DeviceOptions = {}): Promise<PhoneDevice> {
    await umbralReady();
    const file = await storage.get<KeystoreFile>(K_KEYSTORE);
    const rec = await storage.get<DeviceRecord>(K_DEVICE);
    if (file === undefined || rec === undefined) throw new KeysteadError('no_device', 'no Keystead device in this browser');
    return PhoneDevice.fromKeystore(rec, await Keystore.open(file, passphrase), opts);
  }

  /** Open the keystore with the remembered unlock (remember.ts), without the passphrase:
   * `{device}`, or `{device: null, reason}` when the passphrase must be asked (none kept,
   * expired, altered, another keystore's, or the screen lock cancelled). A stored chain that
   * does not verify throws exactly as with the passphrase. */
  static async unlockRemembered(
    opts: DeviceOptions & { prf?: PrfAuthenticator | null } = {},
  ): Promise<{ device: PhoneDevice; prf: boolean } | { device: null; reason: Exclude<Recall, { key: Uint8Array }>['reason'] }> {
    const file = await storage.get<KeystoreFile>(K_KEYSTORE);
    const rec = await storage.get<DeviceRecord>(K_DEVICE);
    if (file === undefined || rec === undefined) return { device: null, reason: 'none' };
    const now = (opts.clock ?? (() => Date.now() / 1000))();
    const salt = (file as { kdf?: { salt?: unknown } }).kdf?.salt;
    if (typeof salt !== 'string') return { device: null, reason: 'invalid' };
    const got = await recallUnlock(salt, { now, prf: opts.prf ?? null });
    if (got.key === null) return { device: null, reason: got.reason };
    let keystore: Keystore;
    try {
      keystore = Keystore.openWithKey(file, got.key);
    } catch (e) {
      if (!(e instanceof WrongPassphrase)) throw e;
      await forgetUnlock(); // a key that does not open this keystore is of no further use
      return { device: null, reason: 'invalid' };
    }
    await umbralReady();
    return { device: await PhoneDevice.fromKeystore(rec, keystore, opts), prf: got.prf };
  }

  /** Keep this keystore's key (wrapped, remember.ts) so the next start needs no passphrase,
   * for `seconds` (default 7 days) from now. Returns whether the screen lock (PRF) guards it. */
  async remember(seconds = DEFAULT_REMEMBER_SECONDS, prf: PrfAuthenticator | null = null): Promise<boolean> {
    return rememberUnlock(this.keystore.unlockKey, this.keystore.salt, { seconds, now: this.clock(), prf });
  }

  /** "Lock now": delete the remembered unlock; the next start asks the passphrase. */
  static async lock(): Promise<void> {
    await forgetUnlock();
  }

  private static async fromKeystore(rec: DeviceRecord, keystore: Keystore, opts: DeviceOptions): Promise<PhoneDevice> {
    const d = keystore.data.device;
    const signing = await SigningKey.fromSeed(b64d(d.signing, 32, 'signing key'));
    const pinned = b64d(keystore.data.account_key, 32, 'pinned account key');
    const entries = ((await storage.get<SignedEntryJson[]>(K_CHAIN)) ?? []).map(parseSignedEntry);
    const state = verifyChain(entries, rec.account, pinned);
    const seen = keystore.data.seen ?? { seq: -1, head: '' };
    checkHead(state, seen.seq, seen.head);
    return new PhoneDevice(rec, keystore, signing, b64d(d.pre, 32, 'PRE key'), entries, state, opts.clock ?? (() => Date.now() / 1000));
  }

  /** Errors met while reading (a tampered prompt or item, a prompt from another RP than its
   * envelope's...): each was refused and skipped; returned once and cleared. */
  problems(): KeysteadError[] {
    const out = this.problemList;
    this.problemList = [];
    return out;
  }

  private refuse(e: unknown): void {
    this.problemList.push(e instanceof KeysteadError ? e : new KeysteadError('error', String(e)));
  }

  private async save(): Promise<void> {
    await storage.put({ [K_KEYSTORE]: this.keystore.toFile(), [K_CHAIN]: this.entries.map(signedEntryToJson) });
  }

  get pairing(): { code: string; token: string } | undefined {
    return this.keystore.data.pairing;
  }

  /** Poll the pairing status until approved (then check the chain carries this device's
   * keys) or about 25 s pass ('pending'). Throws when the code expired. */
  async waitForApproval(signal?: AbortSignal): Promise<'approved' | 'pending'> {
    const ticket = this.keystore.data.pairing;
    if (!ticket) return 'approved';
    const until = Date.now() + 25_000;
    for (;;) {
      const opts: { query: Record<string, string>; signed: boolean; signal?: AbortSignal } = { query: { token: ticket.token }, signed: false };
      if (signal) opts.signal = signal;
      let status: unknown;
      try {
        ({ status } = await this.clientSigned.request<{ status?: unknown }>('GET', pathOf('pairing', ticket.code, 'status'), opts));
      } catch (e) {
        if (signal?.aborted) return 'pending'; // the caller stopped waiting
        throw e;
      }
      if (status === 'approved') break;
      if (status === 'expired') throw new KeysteadError('pairing_expired', 'the pairing code expired before an admin approved it', 'join again');
      if (status !== 'pending') throw new KeysteadError('pairing_refused', `pairing ${String(status)}`);
      if (Date.now() >= until || signal?.aborted) return 'pending';
      await new Promise((r) => setTimeout(r, 500));
    }
    await this.syncChain();
    const me = this.me();
    if (b64e(me.signingKey) !== b64e(this.signing.publicKey) || b64e(me.preKey) !== b64e(publicKeyOf(this.preSecret))) {
      throw new VerificationFailed('the approved device entry does not carry this device keys');
    }
    delete this.keystore.data.pairing;
    await this.save();
    return 'approved';
  }

  /** This device's chain entry; DeviceRemoved once the chain removes it. */
  me(): DeviceInfo {
    const d = this.state.devices.get(this.deviceId);
    if (!d || d.removedSeq !== null) {
      if (!d && this.keystore.data.pairing) throw new KeysteadError('not_approved', 'this device is not approved yet');
      throw new DeviceRemoved(`this device has been removed from account ${this.account}`);
    }
    return d;
  }

  get chain(): ChainState {
    return this.state;
  }

  /** Fetch what is new in the chain, verify it as the continuation of the verified copy,
   * refuse rollbacks and forks; nothing is stored unless it verifies. */
  private syncChain(): Promise<void> {
    // One at a time: reads running at once (a prompt long poll, TOTP, passwords) would each
    // extend the same verified copy with the same new entries.
    const run = this.chainLock.then(() => this.syncChainNow());
    this.chainLock = run.catch(() => {});
    return run;
  }

  private async syncChainNow(): Promise<void> {
    const fresh = await fetchChain(this.clientSigned, this.account, this.entries.length - 1);
    const state = extendChain(this.state, fresh);
    const seen = this.keystore.data.seen ?? { seq: -1, head: '' };
    checkHead(state, seen.seq, seen.head);
    this.entries = [...this.entries, ...fresh];
    this.state = state;
    if (fresh.length) {
      this.keystore.data.seen = { seq: state.seq, head: state.head };
      await this.save();
    }
  }

  /** Chain, then the collections this app reads. Throws DeviceRemoved when removed. */
  async sync(): Promise<void> {
    await this.syncChain();
    const me = this.me();
    for (const c of ['totp', 'passwords']) if (me.scopes.includes(c) && this.state.collections.has(c)) await this.syncCollection(c);
  }

  // ---------------------------------------------------------------- epochs and items

  private async reencrypt(reqs: { key: string; epoch: number; capsule: Uint8Array }[]): Promise<Uint8Array[]> {
    const resp = await this.clientSigned.request<{ cfrags?: unknown }>('POST', pathOf('accounts', this.account, 'reencrypt'), {
      body: { requests: reqs.map((r) => ({ key: r.key, epoch: r.epoch, capsule: b64e(r.capsule) })), context: '' },
    });
    if (!Array.isArray(resp.cfrags) || resp.cfrags.length !== reqs.length) throw new FormatError('the service answered with the wrong number of cfrags');
    return resp.cfrags.map((c: unknown) => b64d((c as { cfrag?: unknown })?.cfrag, undefined, 'cfrag'));
  }

  /** Data keys of an items collection's epochs: cached, else one re-encryption of the newest
   * epoch's key through this device's grant (cfrag verified), walking back. */
  private async epochKeys(name: string, epochs: number[]): Promise<Map<number, Uint8Array>> {
    const cache = (this.keystore.data.epoch_keys ??= {});
    const out = new Map<number, Uint8Array>();
    const missing = new Set<number>();
    for (const e of epochs) {
      const k = cache[`${name}:${e}`];
      if (k) out.set(e, b64d(k, 32));
      else missing.add(e);
    }
    if (!missing.size) return out;
    const c = collection(this.state, name);
    if (c.kind !== 'items') throw new VerificationFailed(`${name} is not an items collection`);
    for (const e of missing) epochOf(c, e);
    const minMissing = Math.min(...missing);
    const above = [...c.epochs.keys()].filter((e) => e > minMissing && cache[`${name}:${e}`]);
    let start: number;
    let key: Uint8Array;
    if (above.length && Math.min(...above) > Math.max(...missing)) {
      start = Math.min(...above);
      key = b64d(cache[`${name}:${start}`], 32);
    } else {
      const cur = currentEpoch(c);
      start = cur.epoch;
      key = await this.newestDataKey(c);
    }
    const found = walkBack(this.account, c, start, key, new Set([...missing, start]));
    for (const [e, k] of found) cache[`${name}:${e}`] = b64e(k);
    await this.save();
    for (const e of missing) out.set(e, found.get(e)!);
    return out;
  }

  private async newestDataKey(c: CollectionInfo): Promise<Uint8Array> {
    const info = currentEpoch(c);
    const [cfrag] = await this.reencrypt([{ key: c.name, epoch: info.epoch, capsule: info.capsule! }]);
    const key = openReencrypted({
      receivingSecret: this.preSecret,
      delegating: info.publicKey,
      signer: this.state.kfragSigner,
      capsule: info.capsule!,
      cfrag: cfrag!,
      ciphertext: info.ciphertext!,
    });
    if (key.length !== 32) throw new VerificationFailed(`${c.name}: the epoch data key has the wrong size`);
    return key;
  }

  /** Fetch new items, check each (writer in the chain, not removed before the item's epoch,
   * Merkle-group signature, admin-only collections), open them; skip and report failures.
   * Offline, the sealed items kept from the last sync are checked and opened again. */
  private syncCollection(name: string, offline = false): Promise<CollectionCache> {
    const lock = this.collectionLocks.get(name) ?? Promise.resolve();
    const run = lock.then(() => this.syncCollectionNow(name, offline));
    this.collectionLocks.set(name, run.then(() => undefined, () => undefined));
    return run;
  }

  private async syncCollectionNow(name: string, offline: boolean): Promise<CollectionCache> {
    let cache = this.caches.get(name);
    if (!cache) {
      cache = { cursor: 0, items: new Map() };
      const kept = await storage.get<{ cursor: number; items: unknown[] }>(K_ITEMS + name);
      // The sealed keystore holds the digest of what was kept: items dropped from (or added
      // to) the copy in IndexedDB are noticed, and the copy is then not used at all.
      const digest = (this.keystore.data.kept as Record<string, string> | undefined)?.[name];
      if (kept && digest === sha256hex(utf8(JSON.stringify(kept)))) {
        const page: SealedItem[] = [];
        for (const raw of kept.items) {
          try {
            page.push(parseItem(raw));
          } catch {
            /* a damaged local copy: the sync fetches it again */
          }
        }
        // Advance the cursor only if every kept item opened again (offline, a data key may be
        // missing: then the next sync fetches everything again).
        if ((await this.applyItems(name, cache, page, offline)) === page.length) cache.cursor = kept.cursor;
      }
      this.caches.set(name, cache);
    }
    if (offline) return cache;
    for (;;) {
      const resp = await this.clientSigned.request<{ items?: unknown }>('GET', pathOf('accounts', this.account, 'collections', name, 'items'), {
        query: { after: cache.cursor, limit: 1000 },
      });
      if (!Array.isArray(resp.items)) throw new FormatError('items: expected {"items": [...]}');
      const page: SealedItem[] = [];
      for (const raw of resp.items) {
        try {
          page.push(parseItem(raw));
        } catch (e) {
          this.refuse(e);
        }
      }
      if (page.some((i) => !collection(this.state, name).epochs.has(i.epoch))) await this.syncChain();
      await this.applyItems(name, cache, page, false);
      for (const it of page) cache.cursor = Math.max(cache.cursor, it.seq);
      if (resp.items.length < 1000) break;
    }
    const kept = { cursor: cache.cursor, items: [...cache.items.values()].map((x) => itemToJson(x.item)) };
    const digests = (this.keystore.data.kept ??= {}) as Record<string, string>;
    digests[name] = sha256hex(utf8(JSON.stringify(kept)));
    await storage.put({ [K_ITEMS + name]: kept, [K_KEYSTORE]: this.keystore.toFile() });
    return cache;
  }

  /** Check and open `page` into `cache`; returns how many were applied (or were older). */
  private async applyItems(name: string, cache: CollectionCache, page: SealedItem[], offline: boolean): Promise<number> {
    const c = collection(this.state, name);
    const good: SealedItem[] = [];
    for (const it of page) {
      try {
        this.checkItem(c, it);
        good.push(it);
      } catch (e) {
        this.refuse(e);
      }
    }
    const epochs = [...new Set(good.filter((i) => !i.deleted).map((i) => i.epoch))];
    let keys = new Map<number, Uint8Array>();
    if (epochs.length) {
      try {
        keys = await this.epochKeys(name, epochs);
      } catch (e) {
        if (!offline || !(e instanceof ServiceError) || e.status !== 0) throw e;
        const cached = this.keystore.data.epoch_keys ?? {};
        for (const ep of epochs) if (cached[`${name}:${ep}`]) keys.set(ep, b64d(cached[`${name}:${ep}`], 32));
      }
    }
    let applied = 0;
    for (const it of good) {
      const prev = cache.items.get(it.id);
      if (prev && prev.item.version >= it.version) {
        applied++;
        continue;
      }
      if (it.deleted) {
        cache.items.delete(it.id);
        applied++;
        continue;
      }
      const key = keys.get(it.epoch);
      if (!key) continue;
      try {
        cache.items.set(it.id, { item: it, plaintext: openItem(key, this.account, name, it) });
        applied++;
      } catch (e) {
        this.refuse(e);
      }
    }
    return applied;
  }

  private checkItem(c: CollectionInfo, it: SealedItem): void {
    const writer = this.state.devices.get(it.writer);
    const what = `item ${it.id} of ${c.name} by ${it.writer}`;
    if (!writer) throw new VerificationFailed(`${what}: the writer is not a device of the account`);
    const epoch = epochOf(c, it.epoch);
    if (writer.removedSeq !== null && epoch.seq > writer.removedSeq) throw new VerificationFailed(`${what}: written after the writer's removal`);
    if ((c.name === '_account' || c.name === '_admin') && writer.role !== 'admin') throw new VerificationFailed(`${what}: not written by an admin`);
    if (!this.verifier.verify(it, writer.signingKey, this.account, c.name)) throw new VerificationFailed(`${what}: the writer signature does not verify`);
  }

  // ---------------------------------------------------------------- prompts

  /** Open sealed-key records of this account's `confirm` collection: the newest epoch through
   * this device's grant (one re-encryption batch, every cfrag verified), older epochs by
   * walking back. Returns null for a record that does not open. */
  private async openSealed(records: Uint8Array[]): Promise<(Uint8Array | null)[]> {
    const out: (Uint8Array | null)[] = records.map(() => null);
    const parsed: ({ epoch: number; capsule: Uint8Array; ciphertext: Uint8Array } | null)[] = records.map((raw) => {
      try {
        const o = parseCanonical(raw, 'sealed key record', 128 * 1024);
        if (o.v !== 2 || !sameKeys(o, ['v', 'owner', 'key', 'epoch', 'capsule', 'ciphertext'])) throw new FormatError('sealed key record: not version 2');
        if (o.owner !== this.account || o.key !== 'confirm') throw new VerificationFailed('a prompt sealed to another account or key');
        if (typeof o.epoch !== 'number' || !Number.isSafeInteger(o.epoch) || o.epoch < 1) throw new FormatError('sealed key record: bad epoch');
        const ct = b64d(o.ciphertext, undefined, 'sealed ciphertext');
        if (ct.length < 40 || ct.length > 64 * 1024 + 40) throw new FormatError('sealed key record: impossible ciphertext length');
        return { epoch: o.epoch, capsule: b64d(o.capsule, 105, 'capsule'), ciphertext: ct };
      } catch (e) {
        this.refuse(e);
        return null;
      }
    });
    const c = collection(this.state, 'confirm');
    const cur = currentEpoch(c).epoch;
    const remote: number[] = [];
    for (let i = 0; i < parsed.length; i++) {
      const r = parsed[i];
      if (!r) continue;
      try {
        epochOf(c, r.epoch);
        if (r.epoch === cur) {
          remote.push(i);
        } else {
          const keys = await this.epochKeys('confirm', [r.epoch + 1]);
          out[i] = decryptOriginal(previousSecret(this.account, c, r.epoch + 1, keys.get(r.epoch + 1)!), r.capsule, r.ciphertext);
        }
      } catch (e) {
        this.refuse(e);
      }
    }
    if (remote.length) {
      const cfrags = await this.reencrypt(remote.map((i) => ({ key: 'confirm', epoch: cur, capsule: parsed[i]!.capsule })));
      const pk = epochOf(c, cur).publicKey;
      remote.forEach((i, j) => {
        try {
          out[i] = openReencrypted({
            receivingSecret: this.preSecret,
            delegating: pk,
            signer: this.state.kfragSigner,
            capsule: parsed[i]!.capsule,
            cfrag: cfrags[j]!,
            ciphertext: parsed[i]!.ciphertext,
          });
        } catch (e) {
          this.refuse(e);
        }
      });
    }
    return out;
  }

  private async fetchPrompts(after: number, wait: number, signal?: AbortSignal): Promise<number[]> {
    const opts: { query: Record<string, number>; signal?: AbortSignal } = { query: { after, wait } };
    if (signal) opts.signal = signal;
    const resp = await this.clientSigned.request<{ prompts?: unknown; cursor?: unknown }>('GET', pathOf('confirm', this.account, 'prompts'), opts);
    if (!Array.isArray(resp.prompts)) throw new FormatError('prompts: expected {"prompts": [...], "cursor"}');
    if (typeof resp.cursor === 'number') this.cursor = Math.max(this.cursor, resp.cursor);
    const rows = resp.prompts.filter(
      (m: unknown): m is { id: number; body: string } =>
        typeof m === 'object' && m !== null && Number.isSafeInteger((m as { id?: unknown }).id) && typeof (m as { body?: unknown }).body === 'string',
    );
    const fresh = rows.filter((m) => !this.received.has(m.id));
    const envs: { id: number; env: ReturnType<typeof parseEnvelope> }[] = [];
    for (const m of fresh) {
      try {
        envs.push({ id: m.id, env: parseEnvelope(b64d(m.body, undefined, 'spool body')) });
      } catch (e) {
        this.received.set(m.id, null);
        this.refuse(e);
      }
    }
    if (envs.length) {
      await this.syncChain(); // the prompts may be sealed to an epoch newer than the copy
      this.me();
      const opened = await this.openSealed(envs.map((x) => x.env.sealed));
      envs.forEach((x, i) => {
        const bytes = opened[i];
        if (!bytes) {
          this.received.set(x.id, null);
          return;
        }
        try {
          const p = parsePrompt(bytes);
          checkAgainstEnvelope(p, x.env);
          this.received.set(x.id, {
            bytes,
            prompt: {
              id: p.id,
              rp: p.rp,
              message: p.message,
              numbers: p.number === null ? null : [...p.choices].sort((a, b) => a - b),
              created: p.created,
              expires: p.expires,
              spoolId: x.id,
            },
          });
        } catch (e) {
          this.received.set(x.id, null);
          this.refuse(e instanceof FormatError ? new VerificationFailed(`a tampered or malformed prompt from ${JSON.stringify(x.env.rp)} was refused: ${e.message}`) : e);
        }
      });
    }
    return rows.map((m) => m.id);
  }

  /** Pending prompts, verified and opened, oldest first. With `waitSeconds`, first long-poll
   * for prompts newer than any seen (the service's wait), then list every pending one. */
  async prompts(opts: { waitSeconds?: number; signal?: AbortSignal } = {}): Promise<Prompt[]> {
    if (opts.waitSeconds) await this.fetchPrompts(this.cursor, Math.min(60, Math.floor(opts.waitSeconds)), opts.signal);
    const live = new Set(await this.fetchPrompts(0, 0, opts.signal));
    for (const k of [...this.received.keys()]) if (!live.has(k) && this.received.get(k)) this.received.delete(k);
    const now = this.clock();
    const out: Prompt[] = [];
    for (const id of [...live].sort((a, b) => a - b)) {
      const r = this.received.get(id);
      if (r && r.prompt.expires > now) out.push(r.prompt);
    }
    return out;
  }

  /** Sign and send an answer (`report`: "this wasn't me"). */
  async answer(p: Prompt, decision: 'approve' | 'deny' | 'report', number?: number): Promise<void> {
    const r = this.received.get(p.spoolId);
    if (!r || r.prompt.id !== p.id) throw new KeysteadError('not_found', 'no such pending prompt');
    const d: Decision = decision === 'report' ? 'deny-report' : decision;
    const answer = await answerPrompt(r.bytes, d, decision === 'approve' ? (number ?? null) : null, this.deviceId, this.signing, Math.floor(this.clock()));
    try {
      await this.clientSigned.request('POST', pathOf('confirm', this.account, 'requests', p.id, 'answer'), { body: { answer: b64e(answer) } });
    } finally {
      this.received.set(p.spoolId, null);
    }
  }

  // ---------------------------------------------------------------- TOTP and passwords

  /** A collection, synced; without a connection, what the last sync kept (checked again
   * against the verified chain and opened with the cached data keys): TOTP codes work offline. */
  private async read(name: string): Promise<CollectionCache | null> {
    let offline = false;
    try {
      await this.syncChain();
    } catch (e) {
      if (!(e instanceof ServiceError) || e.status !== 0) throw e;
      offline = true;
    }
    const me = this.me();
    if (!me.scopes.includes(name) || !this.state.collections.has(name)) return null;
    if (!offline) {
      try {
        const cache = await this.syncCollection(name);
        this.offline = false;
        return cache;
      } catch (e) {
        if (!(e instanceof ServiceError) || e.status !== 0) throw e;
      }
    }
    this.offline = true;
    return this.syncCollection(name, true);
  }

  /** TOTP credentials of the `totp` collection (HOTP ones are not shown). */
  async totp(): Promise<TotpEntry[]> {
    const cache = await this.read('totp');
    if (!cache) return [];
    const out: TotpEntry[] = [];
    for (const [id, { plaintext }] of cache.items) {
      let o: OtpAuth;
      try {
        o = parseTotpItem(plaintext);
      } catch (e) {
        this.refuse(e);
        continue;
      }
      if (o.kind !== 'totp') continue;
      const clock = this.clock;
      out.push({
        id,
        issuer: o.issuer ?? '',
        label: o.account,
        period: o.period,
        digits: o.digits,
        algorithm: o.encoder === 'steam' ? 'steam' : o.algorithm,
        code: (now?: number) => totpCode(o, now ?? clock()),
      });
    }
    return out.sort((a, b) => (a.issuer + a.label).localeCompare(b.issuer + b.label));
  }

  /** Entries of the `passwords` vault, read-only. */
  async passwords(): Promise<PasswordEntry[]> {
    const cache = await this.read('passwords');
    if (!cache) return [];
    const out: PasswordEntry[] = [];
    for (const { plaintext } of cache.items.values()) {
      try {
        const e = parseVaultItem(plaintext);
        out.push({
          id: e.id,
          title: e.name,
          url: e.url,
          username: e.username,
          password: e.password,
          notes: e.notes,
          type: e.type,
          folder: e.folder,
          otherUrls: e.other_urls,
          otpauth: e.otpauth,
        });
      } catch (e) {
        this.refuse(e);
      }
    }
    return out.sort((a, b) => a.title.localeCompare(b.title));
  }

  // ---------------------------------------------------------------- push and wipe

  /** Register this device's Web Push subscription (docs/PHONE.md: `{endpoint, keys}` only). */
  async subscribePush(sub: PushSubscriptionJSON): Promise<void> {
    if (!sub.endpoint || !sub.keys?.p256dh || !sub.keys.auth) throw new FormatError('a push subscription needs endpoint, keys.p256dh and keys.auth');
    await this.clientSigned.request('PUT', pathOf('accounts', this.account, 'push'), {
      body: { endpoint: sub.endpoint, keys: { p256dh: sub.keys.p256dh, auth: sub.keys.auth } },
    });
  }

  /** Forget everything this browser holds for Keystead. */
  async wipe(): Promise<void> {
    this.received.clear();
    this.caches.clear();
    await PhoneDevice.wipe();
  }

  static async wipe(): Promise<void> {
    await storage.clear();
  }
}

export { ServiceError, fromUtf8, cjson };
