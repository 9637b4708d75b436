/** TOTP (RFC 6238 over RFC 4226; SHA1/256/512, 6-8 digits; Steam's 5 characters) and the
 * `totp` collection's items (`{"uri": "otpauth://...", "v": 1}`, docs/second_factor.md). */
import { hmac } from '@noble/hashes/hmac.js';
import { sha1 } from '@noble/hashes/legacy.js';
import { sha256, sha512 } from '@noble/hashes/sha2.js';
import { parseCanonical, sameKeys } from './encoding.js';
import { FormatError, UnsupportedVersion } from './errors.js';

export type Algorithm = 'SHA1' | 'SHA256' | 'SHA512';
const HASHES = { SHA1: sha1, SHA256: sha256, SHA512: sha512 } as const;
const STEAM = '23456789BCDFGHJKMNPQRTVWXY';

export interface OtpAuth {
  kind: 'totp' | 'hotp';
  secret: Uint8Array;
  account: string;
  issuer: string | null;
  algorithm: Algorithm;
  digits: number;
  period: number;
  counter: number;
  encoder: 'steam' | null;
}

function truncated(secret: Uint8Array, counter: number, algorithm: Algorithm): number {
  const msg = new Uint8Array(8);
  new DataView(msg.buffer).setBigUint64(0, BigInt(counter));
  const mac = hmac(HASHES[algorithm], secret, msg);
  const o = mac[mac.length - 1]! & 0x0f;
  return ((mac[o]! & 0x7f) << 24) | (mac[o + 1]! << 16) | (mac[o + 2]! << 8) | mac[o + 3]!;
}

export function hotp(secret: Uint8Array, counter: number, digits = 6, algorithm: Algorithm = 'SHA1'): string {
  return String(truncated(secret, counter, algorithm) % 10 ** digits).padStart(digits, '0');
}

export function steamCode(secret: Uint8Array, counter: number): string {
  let v = truncated(secret, counter, 'SHA1');
  let s = '';
  for (let i = 0; i < 5; i++) {
    s += STEAM[v % STEAM.length];
    v = Math.floor(v / STEAM.length);
  }
  return s;
}

/** The code at unix time `now` (seconds). */
export function totpCode(o: OtpAuth, now: number): string {
  const step = Math.floor(now / o.period);
  return o.encoder === 'steam' ? steamCode(o.secret, step) : hotp(o.secret, step, o.digits, o.algorithm);
}

export function decodeBase32(text: string): Uint8Array {
  const s = text.replace(/ /g, '').toUpperCase().replace(/=+$/, '');
  if (!s || !/^[A-Z2-7]+$/.test(s) || [1, 3, 6].includes(s.length % 8)) throw new FormatError('the secret is not base32');
  const out: number[] = [];
  let acc = 0;
  let bits = 0;
  for (const ch of s) {
    acc = (acc << 5) | 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'.indexOf(ch);
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out.push((acc >> bits) & 0xff);
    }
    acc &= (1 << bits) - 1;
  }
  if (acc !== 0) throw new FormatError('the secret is not canonical base32');
  if (out.length < 10 || out.length > 128) throw new FormatError('the secret must be 80 to 1024 bits');
  return new Uint8Array(out);
}

function intParam(name: string, v: string, lo: number, hi: number): number {
  if (!/^(0|[1-9][0-9]*)$/.test(v)) throw new FormatError(`${name} must be a decimal number`);
  const n = Number(v);
  if (n < lo || n > hi) throw new FormatError(`${name} must be between ${lo} and ${hi}`);
  return n;
}

const PARAMS = new Set(['secret', 'issuer', 'algorithm', 'digits', 'period', 'counter', 'encoder', 'image']);

/** Parse an otpauth:// (or steam://) URI as strictly as the CLI does. */
export function parseOtpAuth(uri: string): OtpAuth {
  uri = uri.trim();
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f]/.test(uri) || uri.length > 4096) throw new FormatError('not an otpauth URI');
  if (uri.slice(0, 8).toLowerCase() === 'steam://') {
    return { kind: 'totp', secret: decodeBase32(uri.slice(8)), account: 'Steam', issuer: 'Steam', algorithm: 'SHA1', digits: 5, period: 30, counter: 0, encoder: 'steam' };
  }
  const m = /^otpauth:\/\/([^/?#]*)(\/[^?#]*)(?:\?([^#]*))?$/i.exec(uri);
  if (!m) throw new FormatError('not an otpauth URI');
  const kind = m[1]!.toLowerCase();
  if (kind !== 'totp' && kind !== 'hotp') throw new FormatError('the type must be totp or hotp');
  let label: string;
  try {
    label = decodeURIComponent(m[2]!.slice(1));
  } catch {
    throw new FormatError('the label is not UTF-8');
  }
  if (!label) throw new FormatError('the label is missing');
  if (label.split(':').length > 2) throw new FormatError('the label has more than one colon');
  let labelIssuer: string | null = null;
  let account = label;
  if (label.includes(':')) {
    const [i, a] = label.split(':') as [string, string];
    if (!i.trim()) throw new FormatError("the label's issuer is empty");
    labelIssuer = i;
    account = a.replace(/^ +/, '');
  }
  const params = new Map<string, string>();
  for (const part of (m[3] ?? '').split('&')) {
    if (!part) throw new FormatError('the query string is malformed');
    const eq = part.indexOf('=');
    if (eq < 0) throw new FormatError('the query string is malformed');
    let k: string;
    let v: string;
    try {
      k = decodeURIComponent(part.slice(0, eq).replace(/\+/g, ' ')).toLowerCase();
      v = decodeURIComponent(part.slice(eq + 1).replace(/\+/g, ' '));
    } catch {
      throw new FormatError('the query string is malformed');
    }
    if (!PARAMS.has(k)) throw new FormatError(`the otpauth parameter ${JSON.stringify(k)} is not supported`);
    if (params.has(k)) throw new FormatError(`parameter ${k} appears twice`);
    params.set(k, v);
  }
  const secretText = params.get('secret');
  if (secretText === undefined) throw new FormatError('the secret parameter is missing');
  const issuer = params.get('issuer') ?? labelIssuer;
  if (params.has('issuer') && labelIssuer !== null && params.get('issuer') !== labelIssuer) {
    throw new FormatError("the issuer parameter and the label's issuer differ");
  }
  const algorithm = (params.get('algorithm') ?? 'SHA1').toUpperCase();
  if (algorithm !== 'SHA1' && algorithm !== 'SHA256' && algorithm !== 'SHA512') throw new FormatError('the algorithm must be SHA1, SHA256 or SHA512');
  const encoder = params.get('encoder');
  let digits: number;
  if (encoder !== undefined) {
    if (encoder.toLowerCase() !== 'steam' || kind !== 'totp' || algorithm !== 'SHA1' || (params.get('digits') ?? '5') !== '5') {
      throw new FormatError('encoder=steam needs a SHA1 totp URI with 5 digits');
    }
    digits = 5;
  } else {
    digits = intParam('digits', params.get('digits') ?? '6', 6, 8);
  }
  let period = 30;
  let counter = 0;
  if (kind === 'totp') {
    if (params.has('counter')) throw new FormatError('a totp URI has no counter');
    period = intParam('period', params.get('period') ?? '30', 1, 86400);
  } else {
    if (params.has('period') || !params.has('counter')) throw new FormatError('an hotp URI has a counter and no period');
    counter = intParam('counter', params.get('counter')!, 0, Number.MAX_SAFE_INTEGER);
  }
  if (!account.trim()) throw new FormatError('the account name is empty');
  return { kind, secret: decodeBase32(secretText), account, issuer, algorithm, digits, period, counter, encoder: encoder ? 'steam' : null };
}

/** A `totp` collection item's plaintext. */
export function parseTotpItem(raw: Uint8Array): OtpAuth {
  const obj = parseCanonical(raw, 'totp item', 8192);
  if (obj.v !== 1) throw new UnsupportedVersion(`totp item of version ${JSON.stringify(obj.v)}; this app reads version 1`);
  if (!sameKeys(obj, ['uri', 'v']) || typeof obj.uri !== 'string') throw new FormatError('totp item: expected {uri, v}');
  return parseOtpAuth(obj.uri);
}
