/** The keystore (FORMAT.md "Keystore"), kept in IndexedDB instead of a file: the same JSON
 * object `{"keystead-keystore": 2, "kdf": {scrypt...}, "sealed"}`, sealed under a key
 * derived from the passphrase, so the key material never leaves the browser unencrypted.
 * Beside it, unencrypted: the device's address (server, account, name) and the chain
 * entries it verified (public data, like the CLI's home folder). A remembered unlock (remember.ts)
 * may keep the derived key, wrapped, beside it. */
import { scryptAsync } from '@noble/hashes/scrypt.js';
import { b64d, b64e, fromUtf8, isInt, parseJsonObject, randomBytes, utf8 } from './encoding.js';
import { LABELS, openSealed, seal } from './crypto.js';
import { FormatError, UnsupportedVersion, WrongPassphrase } from './errors.js';

export const DEFAULT_SCRYPT_N = 1 << 17;

export interface KeystoreFile {
  'keystead-keystore': number;
  kdf: { alg: 'scrypt'; n: number; r: number; p: number; salt: string };
  sealed: string;
}

export interface KeystoreContents {
  device: { signing: string; pre: string; ssh: string };
  account_key: string;
  seen?: { seq: number; head: string };
  epoch_keys?: Record<string, string>;
  sharing?: Record<string, string>;
  pairing?: { code: string; token: string };
  [slot: string]: unknown;
}

function checkKdf(file: unknown): KeystoreFile {
  if (file === null || typeof file !== 'object') throw new FormatError('keystore: not an object');
  const f = file as Record<string, unknown>;
  if (f['keystead-keystore'] !== 2) {
    throw new UnsupportedVersion(`keystore of version ${JSON.stringify(f['keystead-keystore'])}; this app reads version 2`);
  }
  const kdf = f.kdf as Record<string, unknown> | undefined;
  if (!kdf || kdf.alg !== 'scrypt' || !isInt(kdf.n) || !isInt(kdf.r) || !isInt(kdf.p)) throw new FormatError('keystore: bad kdf');
  const n = kdf.n;
  if (n < 1 << 14 || n > 1 << 20 || (n & (n - 1)) !== 0 || kdf.r < 8 || kdf.r > 16 || kdf.p < 1 || kdf.p > 4) {
    throw new FormatError('keystore: kdf parameters out of range');
  }
  b64d(kdf.salt, 16, 'keystore salt');
  if (typeof f.sealed !== 'string') throw new FormatError('keystore: no sealed contents');
  return file as KeystoreFile;
}

export async function deriveKey(passphrase: string, kdf: KeystoreFile['kdf']): Promise<Uint8Array> {
  return scryptAsync(utf8(passphrase), b64d(kdf.salt, 16, 'salt'), { N: kdf.n, r: kdf.r, p: kdf.p, dkLen: 32, maxmem: 2 ** 31 });
}

/** An unlocked keystore: the contents and the derived key (kept in memory so saving does not
 * run scrypt again). */
export class Keystore {
  constructor(
    public data: KeystoreContents,
    private key: Uint8Array,
    private kdf: KeystoreFile['kdf'],
  ) {}

  static async create(passphrase: string, data: KeystoreContents, n = DEFAULT_SCRYPT_N): Promise<Keystore> {
    const kdf = { alg: 'scrypt' as const, n, r: 8, p: 1, salt: b64e(randomBytes(16)) };
    checkKdf({ 'keystead-keystore': 2, kdf, sealed: '' });
    return new Keystore(data, await deriveKey(passphrase, kdf), kdf);
  }

  static async open(file: unknown, passphrase: string): Promise<Keystore> {
    const f = checkKdf(file);
    const key = await deriveKey(passphrase, f.kdf);
    const plain = openSealed(key, b64d(f.sealed, undefined, 'sealed keystore'), utf8(LABELS.KEYSTORE_AD));
    if (!plain) throw new WrongPassphrase();
    return new Keystore(parseJsonObject(fromUtf8(plain), 'keystore contents') as KeystoreContents, key, f.kdf);
  }

  /** Open with the key itself (a remembered unlock, remember.ts): no scrypt. `WrongPassphrase`
   * if it does not open this keystore (another key, or a changed file). */
  static openWithKey(file: unknown, key: Uint8Array): Keystore {
    const f = checkKdf(file);
    if (key.length !== 32) throw new WrongPassphrase();
    const plain = openSealed(key, b64d(f.sealed, undefined, 'sealed keystore'), utf8(LABELS.KEYSTORE_AD));
    if (!plain) throw new WrongPassphrase();
    return new Keystore(parseJsonObject(fromUtf8(plain), 'keystore contents') as KeystoreContents, key, f.kdf);
  }

  /** The key the passphrase derived (for a remembered unlock) and the salt naming this keystore. */
  get unlockKey(): Uint8Array {
    return this.key;
  }

  get salt(): string {
    return this.kdf.salt;
  }

  toFile(): KeystoreFile {
    const sealed = seal(this.key, utf8(JSON.stringify(this.data)), utf8(LABELS.KEYSTORE_AD));
    return { 'keystead-keystore': 2, kdf: this.kdf, sealed: b64e(sealed) };
  }
}

// ---------------------------------------------------------------- IndexedDB

const DB = 'keystead';
const STORE = 'kv';

function req<T>(r: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

function openDb(): Promise<IDBDatabase> {
  const r = indexedDB.open(DB, 1);
  r.onupgradeneeded = () => r.result.createObjectStore(STORE);
  return req(r);
}

export const storage = {
  async get<T>(key: string): Promise<T | undefined> {
    const db = await openDb();
    try {
      return (await req(db.transaction(STORE, 'readonly').objectStore(STORE).get(key))) as T | undefined;
    } finally {
      db.close();
    }
  },
  /** Put several values in one transaction (all or nothing). */
  async put(values: Record<string, unknown>): Promise<void> {
    const db = await openDb();
    try {
      const tx = db.transaction(STORE, 'readwrite');
      const st = tx.objectStore(STORE);
      for (const [k, v] of Object.entries(values)) st.put(v, k);
      await new Promise<void>((resolve, reject) => {
        tx.oncomplete = () => resolve();
        tx.onerror = () => reject(tx.error);
        tx.onabort = () => reject(tx.error);
      });
    } finally {
      db.close();
    }
  },
  async delete(key: string): Promise<void> {
    const db = await openDb();
    try {
      const tx = db.transaction(STORE, 'readwrite');
      tx.objectStore(STORE).delete(key);
      await new Promise<void>((resolve, reject) => {
        tx.oncomplete = () => resolve();
        tx.onerror = () => reject(tx.error);
        tx.onabort = () => reject(tx.error);
      });
    } finally {
      db.close();
    }
  },
  async clear(): Promise<void> {
    const db = await openDb();
    try {
      const tx = db.transaction(STORE, 'readwrite');
      tx.objectStore(STORE).clear();
      await new Promise<void>((resolve, reject) => {
        tx.oncomplete = () => resolve();
        tx.onerror = () => reject(tx.error);
      });
    } finally {
      db.close();
    }
  },
};
