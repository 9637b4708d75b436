/** Primitives of PROTOCOL.md section 1: purpose-bound Ed25519 signatures and the AEAD.
 * Ed25519 signs through WebCrypto with a non-extractable key where the platform has it,
 * else through @noble/curves; verification is strict RFC 8032 (not ZIP-215), as the
 * reference implementation's. */
import { ed25519 } from '@noble/curves/ed25519.js';
import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import { concat, randomBytes, utf8 } from './encoding.js';
import { FormatError, VerificationFailed } from './errors.js';

export const LABELS = {
  CHAIN_ENTRY: 'keystead/v2/chain/entry',
  CHAIN_DEVICE_COUNTERSIGN: 'keystead/v2/chain/device-countersign',
  CHAIN_KEY_ROTATION: 'keystead/v2/chain/key-rotation',
  EPOCH_PREVIOUS: 'keystead/v2/epoch/previous-secret',
  REQUEST: 'keystead/v2/request',
  ITEM_AD: 'keystead/v2/item',
  ITEM_SIGNATURE: 'keystead/v2/item/signature',
  KEYSTORE_AD: 'keystead/v2/keystore',
  SAS_LABEL: 'keystead/v2/pairing/sas',
  CONFIRM_ANSWER: 'keystead/v2/confirm/answer',
} as const;

/** PURPOSE ‖ 0x00 ‖ MESSAGE */
export function purposeMessage(purpose: string, message: Uint8Array): Uint8Array {
  if (!purpose.startsWith('keystead/') || purpose.includes('\0')) throw new Error('bad purpose');
  return concat(utf8(purpose), new Uint8Array([0]), message);
}

export function verifySig(publicKey: Uint8Array, purpose: string, message: Uint8Array, sig: Uint8Array): boolean {
  if (publicKey.length !== 32 || sig.length !== 64) return false;
  try {
    return ed25519.verify(sig, purposeMessage(purpose, message), publicKey, { zip215: false });
  } catch {
    return false;
  }
}

export function requireSig(
  publicKey: Uint8Array,
  purpose: string,
  message: Uint8Array,
  sig: Uint8Array,
  what: string,
): void {
  if (!verifySig(publicKey, purpose, message, sig)) throw new VerificationFailed(`${what}: invalid signature`);
}

export const ed25519PublicKey = (seed: Uint8Array): Uint8Array => ed25519.getPublicKey(seed);

// PKCS#8 wrapping of a raw Ed25519 seed (RFC 8410), for WebCrypto's importKey.
const PKCS8_PREFIX = new Uint8Array([
  0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
]);

/** A device's Ed25519 signing key. The seed is only kept when WebCrypto cannot hold the key. */
export class SigningKey {
  readonly publicKey: Uint8Array;
  private constructor(
    publicKey: Uint8Array,
    private readonly webKey: CryptoKey | null,
    private readonly seed: Uint8Array | null,
  ) {
    this.publicKey = publicKey;
  }

  static async fromSeed(seed: Uint8Array, opts: { webcrypto?: boolean } = {}): Promise<SigningKey> {
    if (seed.length !== 32) throw new FormatError('an Ed25519 seed is 32 bytes');
    const publicKey = ed25519.getPublicKey(seed);
    const subtle = globalThis.crypto?.subtle;
    if (opts.webcrypto !== false && subtle) {
      try {
        const key = await subtle.importKey(
          'pkcs8',
          concat(PKCS8_PREFIX, seed) as Uint8Array<ArrayBuffer>,
          { name: 'Ed25519' },
          false, // non-extractable
          ['sign'],
        );
        return new SigningKey(publicKey, key, null);
      } catch {
        /* no Ed25519 in this WebCrypto: fall back to @noble */
      }
    }
    return new SigningKey(publicKey, null, seed.slice());
  }

  /** Whether the private key lives in WebCrypto (non-extractable) rather than in JS memory. */
  get inWebCrypto(): boolean {
    return this.webKey !== null;
  }

  async sign(purpose: string, message: Uint8Array): Promise<Uint8Array> {
    const m = purposeMessage(purpose, message);
    if (this.webKey) {
      return new Uint8Array(await globalThis.crypto.subtle.sign('Ed25519', this.webKey, m as Uint8Array<ArrayBuffer>));
    }
    return ed25519.sign(m, this.seed!);
  }
}

/** AEAD_seal: nonce(12) ‖ ChaCha20-Poly1305 ciphertext ‖ tag(16). */
export function seal(key: Uint8Array, plaintext: Uint8Array, ad: Uint8Array): Uint8Array {
  const nonce = randomBytes(12);
  return concat(nonce, chacha20poly1305(key, nonce, ad).encrypt(plaintext));
}

/** AEAD open; null when it does not authenticate. */
export function openSealed(key: Uint8Array, sealed: Uint8Array, ad: Uint8Array): Uint8Array | null {
  if (key.length !== 32 || sealed.length < 28) return null;
  try {
    return chacha20poly1305(key, sealed.subarray(0, 12), ad).decrypt(sealed.subarray(12));
  } catch {
    return null;
  }
}
