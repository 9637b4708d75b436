/** Encodings of PROTOCOL.md section 1: strict unpadded base64url, RFC 8785 canonical JSON,
 * big-endian integers, SHA-256, fingerprints. */
import { sha256 } from '@noble/hashes/sha2.js';
import { FormatError } from './errors.js';

const enc = new TextEncoder();
const dec = new TextDecoder('utf-8', { fatal: true });

export const utf8 = (s: string): Uint8Array => enc.encode(s);
export function fromUtf8(b: Uint8Array): string {
  try {
    return dec.decode(b);
  } catch {
    throw new FormatError('not UTF-8');
  }
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i]! ^ b[i]!;
  return d === 0;
}

export function hex(b: Uint8Array): string {
  let s = '';
  for (const x of b) s += x.toString(16).padStart(2, '0');
  return s;
}

export function fromHex(s: string): Uint8Array {
  if (s.length % 2 || !/^[0-9a-fA-F]*$/.test(s)) throw new FormatError('not hex');
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return out;
}

const STD = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

function b64encode(b: Uint8Array, alphabet: string): string {
  let s = '';
  let i = 0;
  for (; i + 2 < b.length; i += 3) {
    const n = (b[i]! << 16) | (b[i + 1]! << 8) | b[i + 2]!;
    s += alphabet[n >> 18]! + alphabet[(n >> 12) & 63]! + alphabet[(n >> 6) & 63]! + alphabet[n & 63]!;
  }
  const rest = b.length - i;
  if (rest === 1) {
    const n = b[i]! << 16;
    s += alphabet[n >> 18]! + alphabet[(n >> 12) & 63]!;
  } else if (rest === 2) {
    const n = (b[i]! << 16) | (b[i + 1]! << 8);
    s += alphabet[n >> 18]! + alphabet[(n >> 12) & 63]! + alphabet[(n >> 6) & 63]!;
  }
  return s;
}

/** B64: unpadded URL-safe base64. */
export function b64e(b: Uint8Array): string {
  return b64encode(b, STD).replace(/\+/g, '-').replace(/\//g, '_');
}

/** Standard base64 without padding (fingerprints). */
export function b64std(b: Uint8Array): string {
  return b64encode(b, STD);
}

/** Strict B64 parse: no padding, no whitespace, canonical last character, optional fixed size. */
export function b64d(text: unknown, size?: number, what = 'value'): Uint8Array {
  if (typeof text !== 'string' || !/^[A-Za-z0-9_-]*$/.test(text) || text.length % 4 === 1) {
    throw new FormatError(`${what}: not unpadded base64url`);
  }
  const out = new Uint8Array(Math.floor((text.length * 3) / 4));
  let bits = 0;
  let acc = 0;
  let o = 0;
  for (const ch of text) {
    const c = ch === '-' ? 62 : ch === '_' ? 63 : STD.indexOf(ch);
    acc = (acc << 6) | c;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (acc >> bits) & 0xff;
    }
    acc &= (1 << bits) - 1;
  }
  if (b64e(out) !== text) throw new FormatError(`${what}: not canonical base64url`);
  if (size !== undefined && out.length !== size) {
    throw new FormatError(`${what}: expected ${size} bytes, got ${out.length}`);
  }
  return out;
}

export function u64be(n: number): Uint8Array {
  if (!Number.isSafeInteger(n) || n < 0) throw new FormatError('u64 out of range');
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(n));
  return out;
}

export function u16be(n: number): Uint8Array {
  return new Uint8Array([(n >> 8) & 0xff, n & 0xff]);
}

export { sha256 };
export const sha256hex = (b: Uint8Array): string => hex(sha256(b));

/** "SHA256:" + standard base64 (no padding) of SHA-256 of the key bytes. */
export function fingerprint(key: Uint8Array): string {
  return 'SHA256:' + b64std(sha256(key));
}

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

function cmpCodePoints(a: string, b: string): number {
  const x = Array.from(a);
  const y = Array.from(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const d = x[i]!.codePointAt(0)! - y[i]!.codePointAt(0)!;
    if (d) return d;
  }
  return x.length - y.length;
}

function canon(v: unknown, depth: number): string {
  if (depth > 64) throw new FormatError('JSON nested too deep');
  if (v === null || typeof v === 'boolean') return JSON.stringify(v);
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v)) throw new FormatError('canonical JSON holds integers only');
    return String(v);
  }
  if (typeof v === 'string') return JSON.stringify(v);
  if (Array.isArray(v)) return '[' + v.map((x) => canon(x, depth + 1)).join(',') + ']';
  if (typeof v === 'object') {
    const keys = Object.keys(v as object).sort(cmpCodePoints);
    return (
      '{' +
      keys
        .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
        .map((k) => JSON.stringify(k) + ':' + canon((v as Record<string, unknown>)[k], depth + 1))
        .join(',') +
      '}'
    );
  }
  throw new FormatError('not representable in canonical JSON');
}

/** CJSON(v): RFC 8785 for Keystead's subset (integers only). */
export function cjson(v: unknown): Uint8Array {
  return utf8(canon(v, 0));
}

/** Parse bytes that must be canonical JSON of an object: one value has one spelling (no
 * floats, no duplicate keys, no integers beyond 2^53-1, no whitespace). */
export function parseCanonical(raw: Uint8Array, what: string, maxBytes = 1 << 20): Record<string, unknown> {
  if (raw.length > maxBytes) throw new FormatError(`${what}: too large`);
  const obj = parseJsonObject(raw, what);
  if (!equalBytes(cjson(obj), raw)) throw new FormatError(`${what}: not canonical JSON`);
  return obj;
}

/** Parse a JSON object (not necessarily canonical). */
export function parseJsonObject(raw: Uint8Array | string, what: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(typeof raw === 'string' ? raw : fromUtf8(raw));
  } catch {
    throw new FormatError(`${what}: not JSON`);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new FormatError(`${what}: not a JSON object`);
  return v as Record<string, unknown>;
}

export function isInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v);
}

export function sameKeys(obj: Record<string, unknown>, keys: readonly string[]): boolean {
  const got = Object.keys(obj);
  return got.length === keys.length && keys.every((k) => Object.prototype.hasOwnProperty.call(obj, k));
}

export function randomBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  crypto.getRandomValues(out);
  return out;
}
