// Formats of docs/second_factor.md, docs/passwords.md and PROTOCOL.md section 1, checked
// against RFC 6238's vectors and against bytes made by the Python CLI's own functions (answers
// are Ed25519 signatures, deterministic: the JS answer must be byte for byte the CLI's).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import './setup.js';
import { b64d, b64e, cjson, fromHex, parseCanonical, utf8 } from '../src/protocol/encoding.js';
import { LABELS, SigningKey } from '../src/protocol/crypto.js';
import { SignedEnvelope } from '../src/protocol/envelope.js';
import { answerPrompt, checkAgainstEnvelope, parseEnvelope, parsePrompt } from '../src/protocol/confirm.js';
import { hotp, parseOtpAuth, parseTotpItem, steamCode, totpCode } from '../src/protocol/totp.js';
import { parseVaultItem } from '../src/protocol/passwords.js';
import { parseInvite } from '../src/protocol/device.js';
import { FormatError, KeysteadError, UnsupportedVersion, VerificationFailed } from '../src/protocol/errors.js';

// Made with keystead.adapters.second_factor (Prompt.to_bytes, answer_prompt) and a fixed seed:
// answers are core signed envelopes (purpose keystead/v2/confirm/answer, signer the device id).
const PROMPT =
  '{"choices":[12,27,31,44,58,65,73,86,97],"created":1700000000,"expires":1700000120,"id":"00112233445566778899aabbccddeeff","msg":"Log in from Berlin?\\nChrome on Linux","number":65,"rp":"bank.example","type":"keystead/v1/confirm/prompt","v":1}';
const APPROVE =
  '{"body":"eyJhdCI6MTcwMDAwMDAwNSwiZGVjaXNpb24iOiJhcHByb3ZlIiwiZGV2aWNlIjoiMDEyMzQ1Njc4OWFiY2RlZiIsImlkIjoiMDAxMTIyMzM0NDU1NjY3Nzg4OTlhYWJiY2NkZGVlZmYiLCJudW1iZXIiOjY1LCJwcm9tcHQiOiJQSi1LU2dZWVZvWHZRc0ctSFBPV2txRDVOM1NYVGxVUWp5U3JVSXJFS2o4IiwicnAiOiJiYW5rLmV4YW1wbGUiLCJ0eXBlIjoia2V5c3RlYWQvdjIvY29uZmlybS9hbnN3ZXItYm9keSIsInYiOjJ9","purpose":"keystead/v2/confirm/answer","sig":"PIcc5QcWOxBJRdDWTU9InM3NFfyQ94KGvakP4yZ8B3myG6_yP0Hd1kMR6c-nX7YD8l0-6WgPMRxC8gItHIrIBQ","signer":"0123456789abcdef","v":1}';
const REPORT =
  '{"body":"eyJhdCI6MTcwMDAwMDAwNiwiZGVjaXNpb24iOiJkZW55LXJlcG9ydCIsImRldmljZSI6IjAxMjM0NTY3ODlhYmNkZWYiLCJpZCI6IjAwMTEyMjMzNDQ1NTY2Nzc4ODk5YWFiYmNjZGRlZWZmIiwibnVtYmVyIjpudWxsLCJwcm9tcHQiOiJQSi1LU2dZWVZvWHZRc0ctSFBPV2txRDVOM1NYVGxVUWp5U3JVSXJFS2o4IiwicnAiOiJiYW5rLmV4YW1wbGUiLCJ0eXBlIjoia2V5c3RlYWQvdjIvY29uZmlybS9hbnN3ZXItYm9keSIsInYiOjJ9","purpose":"keystead/v2/confirm/answer","sig":"VGXj0XR0sEfU9NwBjOVsaBVvshZQSMOv_fMjYY8FwejqORgT7puetSqiv2nhmxxjOBvxfz1gBjDU7o9HWMmkAA","signer":"0123456789abcdef","v":1}';
const SEED = fromHex('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f');

test('confirm: answers are byte for byte the CLI answers', async () => {
  const key = await SigningKey.fromSeed(SEED);
  const p = utf8(PROMPT);
  assert.equal(new TextDecoder().decode(await answerPrompt(p, 'approve', 65, '0123456789abcdef', key, 1700000005)), APPROVE);
  assert.equal(new TextDecoder().decode(await answerPrompt(p, 'deny-report', null, '0123456789abcdef', key, 1700000006)), REPORT);
  await assert.rejects(answerPrompt(p, 'approve', 11, 'x', key, 1700000005), /pick one of the numbers/);
  await assert.rejects(answerPrompt(p, 'approve', 65, 'x', key, 1700000120), /expired/);
  // The envelope names the device as signer and verifies with its key; the body is version 2.
  const env = SignedEnvelope.fromBytes(utf8(APPROVE), LABELS.CONFIRM_ANSWER);
  assert.equal(env.signer, '0123456789abcdef');
  const body = parseCanonical(env.verify(key.publicKey), 'answer body');
  assert.equal(body.v, 2);
  assert.equal(body.type, 'keystead/v2/confirm/answer-body');
  assert.equal(body.device, env.signer);
  await assert.rejects(answerPrompt(p, 'approve', 65, 'has space', key, 1700000005), FormatError);
});

test('confirm: prompts are parsed strictly, and must agree with their envelope', () => {
  const p = parsePrompt(utf8(PROMPT));
  assert.equal(p.number, 65);
  const obj = JSON.parse(PROMPT);
  const bad = (o: Record<string, unknown>): Uint8Array => cjson(o);
  assert.throws(() => parsePrompt(utf8(PROMPT.replace(':65,', ': 65,'))), FormatError, 'not canonical');
  assert.throws(() => parsePrompt(bad({ ...obj, choices: obj.choices.slice(0, 8) })), FormatError, 'fewer than 9 choices');
  assert.throws(() => parsePrompt(bad({ ...obj, number: 11 })), FormatError, 'number not among the choices');
  assert.throws(() => parsePrompt(bad({ ...obj, msg: 'pay \u202eevil' })), FormatError, 'bidi override');
  assert.throws(() => parsePrompt(bad({ ...obj, rp: ' bank' })), FormatError, 'outer space');
  assert.throws(() => parsePrompt(bad({ ...obj, extra: 1 })), FormatError);
  assert.throws(() => parsePrompt(bad({ ...obj, v: 2 })), UnsupportedVersion);
  assert.throws(() => parsePrompt(bad({ ...obj, expires: obj.created + 3601 })), FormatError);
  const env = { v: 1, type: 'keystead/v1/confirm/envelope', id: obj.id, rp: 'bank.example', expires: obj.expires, sealed: b64e(utf8('x')) };
  checkAgainstEnvelope(p, parseEnvelope(cjson(env)));
  assert.throws(() => checkAgainstEnvelope(p, parseEnvelope(cjson({ ...env, rp: 'shop.example' }))), VerificationFailed);
  assert.throws(() => checkAgainstEnvelope(p, parseEnvelope(cjson({ ...env, expires: obj.expires + 1 }))), VerificationFailed);
});

test('TOTP: RFC 6238 appendix B (SHA1, SHA256, SHA512, 8 digits), RFC 4226, Steam', () => {
  const secrets = {
    SHA1: utf8('12345678901234567890'),
    SHA256: utf8('12345678901234567890123456789012'),
    SHA512: utf8('1234567890123456789012345678901234567890123456789012345678901234'),
  } as const;
  const table: [number, string, string, string][] = [
    [59, '94287082', '46119246', '90693936'],
    [1111111109, '07081804', '68084774', '25091201'],
    [1111111111, '14050471', '67062674', '99943326'],
    [1234567890, '89005924', '91819424', '93441116'],
    [2000000000, '69279037', '90698825', '38618901'],
    [20000000000, '65353130', '77737706', '47863826'],
  ];
  for (const [t, s1, s256, s512] of table) {
    for (const [alg, want] of [['SHA1', s1], ['SHA256', s256], ['SHA512', s512]] as const) {
      const o = { kind: 'totp' as const, secret: secrets[alg], account: 'a', issuer: null, algorithm: alg, digits: 8, period: 30, counter: 0, encoder: null };
      assert.equal(totpCode(o, t), want, `${alg} at ${t}`);
    }
  }
  const rfc4226 = ['755224', '287082', '359152', '969429', '338314', '254676', '287922', '162583', '399871', '520489'];
  rfc4226.forEach((want, i) => assert.equal(hotp(secrets.SHA1, i), want));
  assert.equal(hotp(secrets.SHA1, 1, 7), '4287082');
  // from keystead's steam_code
  assert.equal(steamCode(secrets.SHA1, 1), 'PV9M4');
  assert.equal(steamCode(secrets.SHA1, 56666666), 'R87JJ');
});

test('otpauth URIs: parsed as strictly as the CLI', () => {
  const o = parseOtpAuth('otpauth://totp/Example:alice%40example.com?secret=JBSWY3DPEHPK3PXP&issuer=Example&algorithm=SHA512&digits=7&period=60');
  assert.deepEqual([o.issuer, o.account, o.algorithm, o.digits, o.period], ['Example', 'alice@example.com', 'SHA512', 7, 60]);
  assert.equal(parseOtpAuth('otpauth://totp/x?secret=JBSWY3DPEHPK3PXP&encoder=steam').encoder, 'steam');
  for (const bad of [
    'otpauth://totp/x?secret=JBSWY3DPEHPK3PXP&foo=1',
    'otpauth://totp/x?secret=JBSWY3DPEHPK3PXP&digits=9',
    'otpauth://totp/x?secret=JBSWY3DPEHPK3PXPJB', // non-zero trailing bits
    'otpauth://totp/x?secret=JBSWY3DP', // 40 bits
    'otpauth://totp/A:x?secret=JBSWY3DPEHPK3PXP&issuer=B',
    'otpauth://totp/x?secret=JBSWY3DPEHPK3PXP&secret=JBSWY3DPEHPK3PXP',
    'otpauth://totp/x?secret=JBSWY3DPEHPK3PXP&counter=1',
    'https://example.com/?secret=JBSWY3DPEHPK3PXP',
  ]) {
    assert.throws(() => parseOtpAuth(bad), FormatError, bad);
  }
  const item = cjson({ uri: 'otpauth://totp/Example:alice?secret=JBSWY3DPEHPK3PXP&issuer=Example&algorithm=SHA1&digits=6&period=30', v: 1 });
  assert.equal(parseTotpItem(item).account, 'alice');
  assert.throws(() => parseTotpItem(cjson({ uri: 'x', v: 2 })), UnsupportedVersion);
});

test('vault items: version 2, every key, nothing else', () => {
  const entry = {
    id: 'e1', type: 'login', name: 'Bank', url: 'https://bank.example/', other_urls: [], username: 'alice', password: 'pw',
    otpauth: null, notes: '', folder: '', fields: [['pin', '1234', 'hidden']], details: [], passkeys: [], extra: [],
    created: 1, updated: 2, history: [], had_conflict: false, lineage: [],
  };
  const e = parseVaultItem(cjson({ v: 2, entry }));
  assert.deepEqual([e.name, e.username, e.password, e.fields[0]![1]], ['Bank', 'alice', 'pw', '1234']);
  assert.throws(() => parseVaultItem(cjson({ v: 1, entry })), UnsupportedVersion);
  const { notes: _n, ...missing } = entry;
  assert.throws(() => parseVaultItem(cjson({ v: 2, entry: missing })), FormatError);
  assert.throws(() => parseVaultItem(cjson({ v: 2, entry: { ...entry, more: 1 } })), FormatError);
  assert.throws(() => parseVaultItem(cjson({ v: 2, entry: { ...entry, otpauth: '' } })), FormatError);
});

test('encodings: strict base64url, canonical JSON, invites', () => {
  assert.deepEqual([...b64d('AAE')], [0, 1]);
  for (const bad of ['AAE=', 'AA E', 'AAF', 'A', 'AA+/']) assert.throws(() => b64d(bad), FormatError, bad);
  assert.throws(() => b64d('AAE', 3), FormatError);
  assert.equal(new TextDecoder().decode(cjson({ b: [1, null, true], a: 'é\n', '\u{1F600}': 0, z: '' })), '{"a":"é\\n","b":[1,null,true],"z":"","\u{1F600}":0}');
  assert.throws(() => cjson({ a: 1.5 }), FormatError);
  for (const bad of ['{"a":1,"a":1}', '{"a":1.0}', '{ "a":1}', '{"b":1,"a":2}', '{"a":9007199254740993}']) {
    assert.throws(() => parseCanonical(utf8(bad), 'x'), FormatError, bad);
  }
  const inv = parseInvite('#join=alice&fp=SHA256%3A' + encodeURIComponent('x'.repeat(42) + '/'), 'https://keys.example:8443/app/');
  assert.deepEqual(inv, { server: 'https://keys.example:8443', account: 'alice', fingerprint: 'SHA256:' + 'x'.repeat(42) + '/' });
  assert.throws(() => parseInvite('#join=Alice', 'https://k.example/'), KeysteadError);
  assert.throws(() => parseInvite('#join=alice&fp=MD5:x', 'https://k.example/'), KeysteadError);
});
