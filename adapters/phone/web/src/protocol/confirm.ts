/** Confirmation prompts (docs/second_factor.md): the service's envelope, the prompt inside,
 * and the signed answer, byte for byte as the CLI makes it. */
import { b64d, b64e, cjson, isInt, parseCanonical, sameKeys, sha256 } from './encoding.js';
import { LABELS, type SigningKey } from './crypto.js';
import { SignedEnvelope } from './envelope.js';
import { FormatError, KeysteadError, UnsupportedVersion, VerificationFailed } from './errors.js';

const REQUEST_ID = /^[0-9a-f]{32}$/;
export const MIN_CHOICES = 9;
const MAX_CHOICES = 20;
const MAX_LIFETIME = 3600;

export interface ParsedPrompt {
  id: string;
  rp: string;
  message: string;
  created: number;
  expires: number;
  number: number | null;
  choices: number[];
}

export interface Envelope {
  id: string;
  rp: string;
  expires: number;
  sealed: Uint8Array;
}

function checkVersion(obj: Record<string, unknown>, keys: string[], type: string, what: string): void {
  if (obj.v !== 1) throw new UnsupportedVersion(`${what} of version ${JSON.stringify(obj.v)}; this app reads version 1`);
  if (!sameKeys(obj, keys) || obj.type !== type) throw new FormatError(`${what}: unexpected fields`);
}

// Unicode categories Cc, Cf, Cs, Zl, Zp (control, format/bidi, surrogate, separators).
const BAD_CHARS = /[\p{Cc}\p{Cf}\p{Cs}\p{Zl}\p{Zp}]/u;

function checkText(what: string, v: unknown, limit: number, newlines: boolean): string {
  if (typeof v !== 'string' || !v || v !== v.trim()) {
    throw new FormatError(`${what} must be 1 to ${limit} characters, without outer spaces`);
  }
  if ([...v].length > limit) throw new FormatError(`${what} must be 1 to ${limit} characters`); // code points
  for (const ch of v) {
    if (ch === '\n' && newlines) continue;
    if (BAD_CHARS.test(ch)) throw new FormatError(`${what} contains a control or format character`);
  }
  return v;
}

const nonNeg = (what: string, v: unknown): number => {
  if (!isInt(v) || v < 0) throw new FormatError(`${what} must be a non-negative integer`);
  return v;
};

export function parseEnvelope(raw: Uint8Array): Envelope {
  const obj = parseCanonical(raw, 'confirm envelope', 32 * 1024);
  checkVersion(obj, ['v', 'type', 'id', 'rp', 'expires', 'sealed'], 'keystead/v1/confirm/envelope', 'confirm envelope');
  if (typeof obj.id !== 'string' || !REQUEST_ID.test(obj.id)) throw new FormatError('a request id is 32 lowercase hex digits');
  if (typeof obj.rp !== 'string') throw new FormatError('confirm envelope: rp must be a string');
  return { id: obj.id, rp: obj.rp, expires: nonNeg('expires', obj.expires), sealed: b64d(obj.sealed, undefined, 'sealed prompt') };
}

export function parsePrompt(raw: Uint8Array): ParsedPrompt {
  const obj = parseCanonical(raw, 'prompt', 8192);
  checkVersion(obj, ['v', 'type', 'id', 'rp', 'msg', 'created', 'expires', 'number', 'choices'], 'keystead/v1/confirm/prompt', 'prompt');
  if (typeof obj.id !== 'string' || !REQUEST_ID.test(obj.id)) throw new FormatError('a request id is 32 lowercase hex digits');
  const rp = checkText('the relying party name', obj.rp, 100, false);
  const message = checkText('the message', obj.msg, 1000, true);
  const created = nonNeg('created', obj.created);
  const expires = nonNeg('expires', obj.expires);
  if (!(expires - created > 0 && expires - created <= MAX_LIFETIME)) throw new FormatError('a prompt lives 1 to 3600 seconds');
  if (!Array.isArray(obj.choices)) throw new FormatError('choices must be a list');
  const choices = obj.choices.map((c) => nonNeg('a choice', c));
  const two = (n: number): boolean => n >= 10 && n <= 99;
  let number: number | null = null;
  if (obj.number === null) {
    if (choices.length) throw new FormatError('choices without number matching');
  } else {
    number = nonNeg('number', obj.number);
    if (!two(number)) throw new FormatError('the number must have two digits');
    if (choices.length < MIN_CHOICES || choices.length > MAX_CHOICES || new Set(choices).size !== choices.length) {
      throw new FormatError(`number matching needs ${MIN_CHOICES} to ${MAX_CHOICES} distinct choices`);
    }
    if (!choices.every(two)) throw new FormatError('every choice must have two digits');
    if (!choices.includes(number)) throw new FormatError('the choices must include the number');
  }
  return { id: obj.id, rp, message, created, expires, number, choices };
}

/** The inside must agree with what the service wrote (same request id, RP and expiry). */
export function checkAgainstEnvelope(p: ParsedPrompt, env: Envelope): void {
  if (p.id !== env.id || p.rp !== env.rp || p.expires !== env.expires) {
    throw new VerificationFailed(`a prompt posted by ${JSON.stringify(env.rp)} claims to come from ${JSON.stringify(p.rp)}`);
  }
}

export type Decision = 'approve' | 'deny' | 'deny-report';

/** The signed answer, exactly as `answer_prompt` of the CLI: a core signed envelope
 * (purpose keystead/v2/confirm/answer, signer the device id) around the answer body (v 2). */
export async function answerPrompt(
  promptBytes: Uint8Array,
  decision: Decision,
  number: number | null,
  deviceId: string,
  key: SigningKey,
  now: number,
): Promise<Uint8Array> {
  const p = parsePrompt(promptBytes);
  if (now >= p.expires) throw new KeysteadError('expired', 'the request has expired');
  if (decision !== 'approve') {
    if (number !== null) throw new KeysteadError('invalid_choice', 'only an approval carries a number');
  } else if (p.number === null) {
    if (number !== null) throw new KeysteadError('invalid_choice', 'this prompt has no number to match');
  } else if (number === null || !p.choices.includes(number)) {
    throw new KeysteadError('invalid_choice', 'pick one of the numbers offered');
  }
  const body = cjson({
    v: 2,
    type: 'keystead/v2/confirm/answer-body',
    id: p.id,
    prompt: b64e(sha256(promptBytes)),
    rp: p.rp,
    decision,
    number,
    at: Math.floor(now),
    device: deviceId,
  });
  return (await SignedEnvelope.sign(key, LABELS.CONFIRM_ANSWER, deviceId, body)).toBytes();
}
