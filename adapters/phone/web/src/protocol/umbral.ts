/** Umbral (umbral-pre 0.11 wire format) through the @nucypher/umbral-pre WASM build.
 *
 * The WASM module is instantiated by hand from the package's `pkg-bundler` glue, so the
 * same code runs in browsers (fetching the .wasm next to the bundle, or a URL given to
 * `configureUmbral`) and in node (bytes read from node_modules); no bundler WASM support
 * is needed. Everything here is bytes in, bytes out, and every failure is a typed error. */
import * as bg from '@nucypher/umbral-pre/pkg-bundler/umbral_pre_wasm_bg.js';
import { FormatError, KeysteadError, VerificationFailed } from './errors.js';

export type WasmSource = BufferSource | Response | Promise<Response> | URL | string;

let source: (() => WasmSource | Promise<WasmSource>) | null = null;
let ready: Promise<void> | null = null;

/** Where the umbral_pre_wasm_bg.wasm comes from (call before the first use). Default: in a
 * browser, `umbral_pre_wasm_bg.wasm` next to the script that bundles this module. */
export function configureUmbral(src: () => WasmSource | Promise<WasmSource>): void {
  source = src;
  ready = null;
}

async function instantiate(): Promise<void> {
  let src: WasmSource = source ? await source() : new URL('./umbral_pre_wasm_bg.wasm', import.meta.url);
  const imports = { './umbral_pre_wasm_bg.js': bg as unknown as WebAssembly.ModuleImports };
  if (typeof src === 'string' || src instanceof URL) src = fetch(src);
  let instance: WebAssembly.Instance;
  if (src instanceof Promise || src instanceof Response) {
    const resp = await src;
    if (!resp.ok) throw new KeysteadError('umbral_unavailable', `cannot load the Umbral WASM (${resp.status})`);
    instance = (await WebAssembly.instantiate(await resp.arrayBuffer(), imports)).instance;
  } else {
    instance = (await WebAssembly.instantiate(src, imports)).instance;
  }
  bg.__wbg_set_wasm(instance.exports);
}

/** Load the WASM once. */
export function umbralReady(): Promise<void> {
  if (!ready) {
    ready = instantiate().catch((e: unknown) => {
      ready = null;
      throw e;
    });
  }
  return ready;
}

export const CAPSULE_SIZE = 105;

function guard<T>(what: string, f: () => T, Err: new (m: string) => KeysteadError = FormatError): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof KeysteadError) throw e;
    throw new Err(what);
  }
}

export const publicKeyOf = (secret: Uint8Array): Uint8Array =>
  guard('not an Umbral secret key', () => bg.SecretKey.fromBEBytes(secret).publicKey().toCompressedBytes());

export function randomSecret(): Uint8Array {
  return bg.SecretKey.random().toBEBytes();
}

export function checkPublicKey(pk: Uint8Array, what = 'Umbral public key'): Uint8Array {
  if (pk.length !== 33) throw new FormatError(`${what}: 33 bytes expected`);
  guard(`${what}: not a point`, () => bg.PublicKey.fromCompressedBytes(pk));
  return pk;
}

export function encrypt(pk: Uint8Array, plaintext: Uint8Array): [Uint8Array, Uint8Array] {
  return guard('Umbral encryption failed', () => {
    const [capsule, ct] = bg.encrypt(bg.PublicKey.fromCompressedBytes(pk), plaintext);
    return [capsule.toBytes(), ct];
  });
}

export function decryptOriginal(sk: Uint8Array, capsule: Uint8Array, ciphertext: Uint8Array): Uint8Array {
  return guard(
    'Umbral decryption failed',
    () => bg.decryptOriginal(bg.SecretKey.fromBEBytes(sk), bg.Capsule.fromBytes(capsule), ciphertext),
    VerificationFailed,
  );
}

/** Verify one cfrag (kfrag signer, delegating and receiving keys) and decrypt with it;
 * a cfrag that does not verify is `VerificationFailed` and nothing is decrypted. */
export function openReencrypted(args: {
  receivingSecret: Uint8Array;
  delegating: Uint8Array;
  signer: Uint8Array;
  capsule: Uint8Array;
  cfrag: Uint8Array;
  ciphertext: Uint8Array;
}): Uint8Array {
  const sk = guard('not an Umbral secret key', () => bg.SecretKey.fromBEBytes(args.receivingSecret));
  const capsule = guard('not an Umbral capsule', () => bg.Capsule.fromBytes(args.capsule));
  const delegating = guard('bad delegating key', () => bg.PublicKey.fromCompressedBytes(args.delegating));
  const signer = guard('bad kfrag signer', () => bg.PublicKey.fromCompressedBytes(args.signer));
  const cfrag = guard('not a capsule fragment', () => bg.CapsuleFrag.fromBytes(args.cfrag));
  const verified = guard(
    'capsule fragment did not verify',
    () => cfrag.verify(capsule, signer, delegating, sk.publicKey()),
    VerificationFailed,
  );
  return guard(
    're-encrypted decryption failed',
    () => bg.decryptReencrypted(sk, delegating, capsule, [verified], args.ciphertext),
    VerificationFailed,
  );
}

/** One kfrag (threshold 1 of 1, both keys signed), as PROTOCOL.md section 5. */
export function makeKfrag(delegating: Uint8Array, receiving: Uint8Array, signer: Uint8Array): Uint8Array {
  const [kfrag] = bg.generateKFrags(
    bg.SecretKey.fromBEBytes(delegating),
    bg.PublicKey.fromCompressedBytes(receiving),
    new bg.Signer(bg.SecretKey.fromBEBytes(signer)),
    1,
    1,
    true,
    true,
  );
  return kfrag!.toBytes();
}

export function verifyKfrag(kfrag: Uint8Array, signer: Uint8Array, delegating: Uint8Array, receiving: Uint8Array): void {
  guard(
    'key fragment did not verify',
    () =>
      bg.KeyFrag.fromBytes(kfrag).verify(
        bg.PublicKey.fromCompressedBytes(signer),
        bg.PublicKey.fromCompressedBytes(delegating),
        bg.PublicKey.fromCompressedBytes(receiving),
      ),
    VerificationFailed,
  );
}

export function reencrypt(capsule: Uint8Array, kfrag: Uint8Array): Uint8Array {
  return guard('re-encryption failed', () =>
    bg.reencrypt(bg.Capsule.fromBytes(capsule), bg.KeyFrag.fromBytes(kfrag).skipVerification()).toBytes(),
  );
}

/** ECDSA secp256k1 (umbral_pre.Signer), 64 bytes r ‖ s: the recovery key's signatures. */
export function ecdsaVerify(pk: Uint8Array, message: Uint8Array, sig: Uint8Array): boolean {
  try {
    return bg.Signature.fromBEBytes(sig).verify(bg.PublicKey.fromCompressedBytes(pk), message);
  } catch {
    return false;
  }
}
