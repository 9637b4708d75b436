/** The core's signed envelope (keystead.core.envelope, docs/PROTOCOL.md): exact body bytes
 * signed for one purpose by a named signer, verified before they are parsed. On the wire
 * (canonical JSON, version 1):
 *
 *   {"body":B64(BODY),"purpose":PURPOSE,"sig":B64(SIG),"signer":SIGNER,"v":1}
 *
 * SIG is the purpose-bound Ed25519 signature (purpose PURPOSE) over
 * "keystead-envelope/1" 0x0A SIGNER 0x0A BODY. */
import { b64d, b64e, cjson, concat, parseJsonObject, sameKeys, utf8 } from './encoding.js';
import { requireSig, type SigningKey } from './crypto.js';
import { FormatError, UnsupportedVersion } from './errors.js';

export const ENVELOPE_VERSION = 1;
export const MAX_BODY = 1024 * 1024;
const SIGNER = /^[\x21-\x7e]{1,512}$/;
const PURPOSE = /^keystead\/v[0-9]+\/[a-z0-9_./-]{1,200}$/;
const DOMAIN = utf8('keystead-envelope/1\n');

function signedBytes(signer: string, body: Uint8Array): Uint8Array {
  return concat(DOMAIN, utf8(signer), utf8('\n'), body);
}

function check(purpose: unknown, signer: unknown): [string, string] {
  if (typeof purpose !== 'string' || !PURPOSE.test(purpose)) throw new FormatError('signed envelope: invalid purpose');
  if (typeof signer !== 'string' || !SIGNER.test(signer)) throw new FormatError('signed envelope: invalid signer');
  return [purpose, signer];
}

export class SignedEnvelope {
  private constructor(
    readonly purpose: string,
    readonly signer: string,
    private readonly body: Uint8Array,
    readonly signature: Uint8Array,
  ) {}

  static async sign(key: SigningKey, purpose: string, signer: string, body: Uint8Array): Promise<SignedEnvelope> {
    check(purpose, signer);
    if (body.length > MAX_BODY) throw new FormatError('signed envelope: body too large');
    return new SignedEnvelope(purpose, signer, body.slice(), await key.sign(purpose, signedBytes(signer, body)));
  }

  toBytes(): Uint8Array {
    return cjson({
      v: ENVELOPE_VERSION,
      purpose: this.purpose,
      signer: this.signer,
      body: b64e(this.body),
      sig: b64e(this.signature),
    });
  }

  /** Parse the wrapper strictly (nothing verified yet); another purpose or version is refused. */
  static fromBytes(raw: Uint8Array, purpose: string): SignedEnvelope {
    if (raw.length > 2 * MAX_BODY) throw new FormatError('signed envelope too large');
    const obj = parseJsonObject(raw, 'signed envelope');
    if (obj.v !== ENVELOPE_VERSION) {
      throw new UnsupportedVersion(`signed envelope of version ${JSON.stringify(obj.v)}; this app reads version ${ENVELOPE_VERSION}`);
    }
    if (!sameKeys(obj, ['v', 'purpose', 'signer', 'body', 'sig'])) throw new FormatError('signed envelope: unexpected fields');
    const [got, signer] = check(obj.purpose, obj.signer);
    if (got !== purpose) throw new FormatError(`signed envelope for ${JSON.stringify(got)}, expected ${JSON.stringify(purpose)}`);
    const body = b64d(obj.body, undefined, 'signed envelope body');
    if (body.length > MAX_BODY) throw new FormatError('signed envelope: body too large');
    return new SignedEnvelope(got, signer, body, b64d(obj.sig, 64, 'signed envelope sig'));
  }

  /** The exact body bytes, once `publicKey` verifies the signature (VerificationFailed otherwise). */
  verify(publicKey: Uint8Array): Uint8Array {
    requireSig(publicKey, this.purpose, signedBytes(this.signer, this.body), this.signature, 'signed envelope');
    return this.body.slice();
  }
}
