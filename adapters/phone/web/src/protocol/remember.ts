/** The remembered unlock (docs/PHONE.md section 7, docs/FORMAT.md "Keystore" in a browser): after
 * the passphrase opened the keystore once, its 32-byte key (the scrypt output) is kept in
 * IndexedDB wrapped under a NON-EXTRACTABLE WebCrypto AES-GCM key that lives beside it, so a
 * cold start opens the keystore without scrypt. Where the platform offers a user-verifying
 * authenticator with the WebAuthn PRF extension, the key is first wrapped under a key derived
 * from the authenticator's PRF output too (the screen lock is asked at each cold start, and a
 * copy of the browser profile alone no longer opens it).
 *
 * The wrapping is the same trade-off as the CLI's unlock agent (`keystead unlock`): it spares
 * the passphrase for a while; it does not protect against whoever can run code as the app (a
 * script can ask WebCrypto to unwrap, though never to export the wrapping key) or copy the
 * browser profile of an unlocked phone while it is remembered. It expires (default 7
 * days after the passphrase was typed, never extended by a remembered open), and "Lock now"
 * deletes it. Anything wrong with it (missing, expired, altered, another key) means: ask the
 * passphrase. The keystore itself is unchanged: still sealed under the passphrase's key. */
import { b64d, b64e, concat, isInt, randomBytes, utf8 } from './encoding.js';
import { storage } from './keystore.js';

export const REMEMBER_KEY = 'unlock'; // the IndexedDB record (object store `kv`)
export const DEFAULT_REMEMBER_SECONDS = 7 * 86400;
export const MAX_REMEMBER_SECONDS = 30 * 86400;
const AD_LABEL = 'keystead/v2/phone/remembered-unlock';
const PRF_INFO = 'keystead/v2/phone/prf-unlock';

/** What IndexedDB holds under `unlock`. */
export interface RememberedRecord {
  v: 1;
  /** AES-GCM 256, extractable = false, usages encrypt/decrypt. */
  key: CryptoKey;
  /** AES-GCM nonce (12 bytes) of `wrapped`. */
  iv: Uint8Array;
  /** AES-GCM(key, iv, inner, AD): inner is the keystore key (32 bytes), or with PRF the
   * AES-GCM(prf key, prf.iv, keystore key, AD) of it (48 bytes). Tag included. */
  wrapped: Uint8Array;
  /** The keystore's scrypt salt (B64): a remembered key belongs to one keystore. */
  salt: string;
  /** Unix seconds: when the passphrase was typed, and when this stops opening the keystore. */
  created: number;
  expires: number;
  prf?: { credential: string; salt: string; iv: Uint8Array };
}

/** A user-verifying authenticator with the WebAuthn PRF extension (the screen lock). */
export interface PrfAuthenticator {
  /** Make a credential and evaluate its PRF at `salt`; null if the platform cannot. */
  enroll(salt: Uint8Array): Promise<{ id: Uint8Array; secret: Uint8Array } | null>;
  /** The credential's PRF at `salt` (asks for the screen lock); null if refused or cancelled. */
  evaluate(id: Uint8Array, salt: Uint8Array): Promise<Uint8Array | null>;
}

export type Recall =
  | { key: Uint8Array; prf: boolean }
  | { key: null; reason: 'none' | 'expired' | 'invalid' | 'cancelled' };

const buf = (u: Uint8Array): ArrayBuffer => new Uint8Array(u).buffer;

function ad(r: Pick<RememberedRecord, 'salt' | 'created' | 'expires' | 'prf'>): ArrayBuffer {
  const fields = [r.salt, String(r.created), String(r.expires), r.prf ? r.prf.credential : '', r.prf ? r.prf.salt : ''];
  return buf(concat(utf8(AD_LABEL), new Uint8Array([0]), utf8(fields.join('\n'))));
}

async function prfKey(secret: Uint8Array): Promise<CryptoKey> {
  const ikm = await crypto.subtle.importKey('raw', buf(secret), 'HKDF', false, ['deriveKey']);
  return crypto.subtle.deriveKey(
    { name: 'HKDF', hash: 'SHA-256', salt: new ArrayBuffer(0), info: buf(utf8(PRF_INFO)) },
    ikm,
    { name: 'AES-GCM', length: 256 },
    false,
    ['encrypt', 'decrypt'],
  );
}

export interface RememberOptions {
  seconds?: number;
  /** Unix seconds. */
  now: number;
  prf?: PrfAuthenticator | null;
}

/** Keep `key` (the keystore's, 32 bytes) for `seconds`; replaces a previous one. Returns whether
 * the PRF layer is used. */
export async function rememberUnlock(key: Uint8Array, salt: string, opts: RememberOptions): Promise<boolean> {
  const seconds = opts.seconds ?? DEFAULT_REMEMBER_SECONDS;
  if (!isInt(seconds) || seconds <= 0 || seconds > MAX_REMEMBER_SECONDS) throw new RangeError(`remember for 1 s to ${MAX_REMEMBER_SECONDS} s`);
  if (key.length !== 32) throw new RangeError('a keystore key is 32 bytes');
  const created = Math.floor(opts.now);
  const base = { salt, created, expires: created + seconds };
  let inner = key;
  let prf: RememberedRecord['prf'];
  if (opts.prf) {
    const prfSalt = randomBytes(32);
    let made: { id: Uint8Array; secret: Uint8Array } | null = null;
    try {
      made = await opts.prf.enroll(prfSalt);
    } catch {
      made = null; // cancelled, or the platform said no: the non-extractable key alone
    }
    if (made) {
      prf = { credential: b64e(made.id), salt: b64e(prfSalt), iv: randomBytes(12) };
      const k = await prfKey(made.secret);
      inner = new Uint8Array(await crypto.subtle.encrypt({ name: 'AES-GCM', iv: buf(prf.iv), additionalData: ad({ ...base, prf }) }, k, buf(key)));
    }
  }
  const wrapKey = await crypto.subtle.generateKey({ name: 'AES-GCM', length: 256 }, false, ['encrypt', 'decrypt']);
  const iv = randomBytes(12);
  const wrapped = new Uint8Array(await crypto.subtle.encrypt({ name: 'AES-GCM', iv: buf(iv), additionalData: ad({ ...base, prf }) }, wrapKey, buf(inner)));
  const record: RememberedRecord = { v: 1, key: wrapKey, iv, wrapped, ...base, ...(prf ? { prf } : {}) };
  await storage.put({ [REMEMBER_KEY]: record });
  return prf !== undefined;
}

function wellFormed(r: unknown): r is RememberedRecord {
  if (r === null || typeof r !== 'object') return false;
  const x = r as Record<string, unknown>;
  const p = x.prf as Record<string, unknown> | undefined;
  return (
    x.v === 1 &&
    typeof CryptoKey !== 'undefined' &&
    x.key instanceof CryptoKey &&
    x.iv instanceof Uint8Array &&
    x.iv.length === 12 &&
    x.wrapped instanceof Uint8Array &&
    typeof x.salt === 'string' &&
    isInt(x.created) &&
    isInt(x.expires) &&
    (p === undefined || (typeof p.credential === 'string' && typeof p.salt === 'string' && p.iv instanceof Uint8Array && p.iv.length === 12))
  );
}

/** The remembered key of the keystore whose salt is `salt`, or why there is none. An expired,
 * altered or foreign record is deleted; a cancelled screen lock keeps it. */
export async function recallUnlock(salt: string, opts: { now: number; prf?: PrfAuthenticator | null }): Promise<Recall> {
  const r = await storage.get<unknown>(REMEMBER_KEY);
  if (r === undefined) return { key: null, reason: 'none' };
  const drop = async (reason: 'expired' | 'invalid'): Promise<Recall> => {
    await forgetUnlock();
    return { key: null, reason };
  };
  if (!wellFormed(r) || r.salt !== salt) return drop('invalid');
  // expires is bound into the AD below: moving it forward in IndexedDB breaks the wrapping
  if (opts.now >= r.expires || opts.now < r.created - 300 || r.expires - r.created > MAX_REMEMBER_SECONDS) return drop('expired');
  let inner: Uint8Array;
  try {
    inner = new Uint8Array(await crypto.subtle.decrypt({ name: 'AES-GCM', iv: buf(r.iv), additionalData: ad(r) }, r.key, buf(r.wrapped)));
  } catch {
    return drop('invalid');
  }
  if (!r.prf) return inner.length === 32 ? { key: inner, prf: false } : drop('invalid');
  if (!opts.prf) return { key: null, reason: 'cancelled' }; // the authenticator is not at hand
  let secret: Uint8Array | null;
  try {
    secret = await opts.prf.evaluate(b64d(r.prf.credential, undefined, 'credential id'), b64d(r.prf.salt, 32, 'prf salt'));
  } catch {
    secret = null;
  }
  if (!secret) return { key: null, reason: 'cancelled' };
  try {
    const key = new Uint8Array(await crypto.subtle.decrypt({ name: 'AES-GCM', iv: buf(r.prf.iv), additionalData: ad(r) }, await prfKey(secret), buf(inner)));
    return key.length === 32 ? { key, prf: true } : drop('invalid');
  } catch {
    return drop('invalid');
  }
}

/** Whether a remembered unlock is kept, and whether it needs the authenticator. */
export async function rememberedKind(): Promise<'none' | 'key' | 'prf'> {
  const r = await storage.get<unknown>(REMEMBER_KEY);
  if (!wellFormed(r)) return 'none';
  return r.prf ? 'prf' : 'key';
}

/** "Lock now": delete the wrapping key (and what it wraps). */
export async function forgetUnlock(): Promise<void> {
  await storage.delete(REMEMBER_KEY);
}

// ------------------------------------------------------------------- WebAuthn PRF, detected

interface PrfResults {
  prf?: { enabled?: boolean; results?: { first?: ArrayBuffer | ArrayBufferView } };
}

const bytesOf = (v: ArrayBuffer | ArrayBufferView | undefined): Uint8Array | null =>
  v === undefined ? null : v instanceof ArrayBuffer ? new Uint8Array(v) : new Uint8Array(v.buffer, v.byteOffset, v.byteLength);

/** The platform's user-verifying authenticator with PRF, or null (feature-detected: the
 * browser must say it supports the `prf` extension and that a platform authenticator that
 * verifies the user is available, which headless browsers and most desktops do not; and the
 * app must be reached at a domain name: an IP address cannot be a WebAuthn relying party). */
export async function browserPrf(user: { name: string; rpId: string }): Promise<PrfAuthenticator | null> {
  const PKC = (globalThis as { PublicKeyCredential?: unknown }).PublicKeyCredential as
    | { getClientCapabilities?: () => Promise<Record<string, boolean>>; isUserVerifyingPlatformAuthenticatorAvailable?: () => Promise<boolean> }
    | undefined;
  if (!PKC || typeof navigator === 'undefined' || !navigator.credentials) return null;
  // WebAuthn's relying party is a domain: an app reached at an IP address cannot have one
  if (/^[\d.]+$|:|^\[/.test(user.rpId)) return null;
  try {
    if (typeof PKC.getClientCapabilities !== 'function' || typeof PKC.isUserVerifyingPlatformAuthenticatorAvailable !== 'function') return null;
    const caps = await PKC.getClientCapabilities();
    if (caps['extension:prf'] !== true) return null;
    if (!(await PKC.isUserVerifyingPlatformAuthenticatorAvailable())) return null;
  } catch {
    return null;
  }
  const evaluate = async (id: Uint8Array, salt: Uint8Array): Promise<Uint8Array | null> => {
    const cred = (await navigator.credentials.get({
      publicKey: {
        challenge: buf(randomBytes(32)), // no server checks an assertion: only the PRF is used
        rpId: user.rpId,
        timeout: 60_000,
        allowCredentials: [{ type: 'public-key', id: buf(id) }],
        userVerification: 'required',
        extensions: { prf: { eval: { first: buf(salt) } } } as AuthenticationExtensionsClientInputs,
      },
    })) as PublicKeyCredential | null;
    const out = bytesOf((cred?.getClientExtensionResults() as PrfResults | undefined)?.prf?.results?.first);
    return out && out.length === 32 ? out : null;
  };
  return {
    evaluate,
    async enroll(salt) {
      const cred = (await navigator.credentials.create({
        publicKey: {
          rp: { name: 'Keystead', id: user.rpId },
          user: { id: buf(randomBytes(16)), name: user.name, displayName: user.name },
          challenge: buf(randomBytes(32)),
          timeout: 60_000,
          pubKeyCredParams: [
            { type: 'public-key', alg: -7 },
            { type: 'public-key', alg: -8 },
            { type: 'public-key', alg: -257 },
          ],
          authenticatorSelection: { authenticatorAttachment: 'platform', userVerification: 'required', residentKey: 'discouraged' },
          extensions: { prf: { eval: { first: buf(salt) } } } as AuthenticationExtensionsClientInputs,
        },
      })) as PublicKeyCredential | null;
      if (!cred) return null;
      const res = cred.getClientExtensionResults() as PrfResults;
      if (res.prf?.enabled === false || res.prf === undefined) return null;
      const id = new Uint8Array(cred.rawId);
      // some authenticators evaluate at creation, others only on an assertion
      const secret = bytesOf(res.prf.results?.first) ?? (await evaluate(id, salt));
      return secret && secret.length === 32 ? { id, secret } : null;
    },
  };
}
