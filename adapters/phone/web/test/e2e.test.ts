// End to end against a REAL `keystead serve` on loopback and a real CLI admin device: the
// library joins as a phone, is approved, answers a number-matching prompt that the RP
// verifies, reads TOTP codes (equal to oathtool's) and a password, and is cut off by removal.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { createServer as createHttpServer, request as httpRequest, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KEYSTEAD } from './setup.js';
import { DeviceRemoved, KeysteadError, PhoneDevice, VerificationFailed, WrongPassphrase, parseInvite, type Prompt } from '../src/protocol/device.js';
import { b64d, b64e, cjson, fromUtf8 } from '../src/protocol/encoding.js';
import { Keystore } from '../src/protocol/keystore.js';
import { ServiceClient } from '../src/protocol/client.js';
import { SigningKey } from '../src/protocol/crypto.js';
import { storage } from '../src/protocol/keystore.js';

const tmp = mkdtempSync(join(tmpdir(), 'wtphone-j1-e2e-'));
let service: ChildProcess;
let url = '';
const ACCOUNT = `phone${process.pid}`;
const PASS = 'phone passphrase';
const TOTP_SECRET = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP';
const cliEnv = (home: string): NodeJS.ProcessEnv => ({
  ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('KEYSTEAD_'))),
  KEYSTEAD_HOME: join(tmp, home),
  KEYSTEAD_PASSPHRASE: 'laptop passphrase',
  KEYSTEAD_SCRYPT_N: '16384',
});

function cli(args: string[], input?: string): { stdout: string; stderr: string } {
  const r = spawnSync(KEYSTEAD, args, { env: cliEnv('laptop'), input, encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) throw new Error(`keystead ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return { stdout: r.stdout, stderr: r.stderr };
}

/** `keystead confirm request` as a relying party runs it (its own folder for pins). */
function rp(token: string, message: string): { proc: ChildProcess; number: Promise<number>; done: Promise<[number, string, string]> } {
  const proc = spawn(KEYSTEAD, ['confirm', 'request', ACCOUNT, '--server', url, '--rp-token', token, '--message', message, '--number-matching', '--wait', '60'], {
    env: { ...cliEnv('rp'), KEYSTEAD_PASSPHRASE: '' },
  });
  let out = '';
  let err = '';
  let resolveNumber: (n: number) => void;
  const number = new Promise<number>((r) => (resolveNumber = r));
  proc.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
    const m = /number: (\d\d)/.exec(out);
    if (m) resolveNumber(Number(m[1]));
  });
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const done = new Promise<[number, string, string]>((r) => proc.on('exit', (code) => r([code ?? -1, out, err])));
  return { proc, number, done };
}

/** A CLI device joins (`device join` in its own home) and the laptop approves it. */
async function cliJoin(name: string, approve: string[]): Promise<void> {
  const join = spawn(KEYSTEAD, ['device', 'join', ACCOUNT, '--server', url, '--device', name, '--wait', '60'], { env: cliEnv(name) });
  const code = await new Promise<string>((resolve, reject) => {
    let out = '';
    join.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /pairing code: (\S+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    join.on('exit', (c) => reject(new Error(`device join exited ${c}`)));
  });
  const exited = new Promise((r) => join.on('exit', r));
  cli(['device', 'approve', code, '--yes', ...approve]);
  await exited;
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

async function waitFor<T>(f: () => Promise<T | undefined>, what: string, seconds = 30): Promise<T> {
  const until = Date.now() + seconds * 1000;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

let token = '';
let phone: PhoneDevice;

// The phone talks to the service through this proxy, which plays a malicious or impersonated
// service: it sees and may rewrite every answer (the attacker of PROTOCOL.md section 14 has
// everything the service stores and serves, but no device or account key). It keeps the Host
// header, so the service checks the signatures against the origin the phone signed for.
type Tamper = (path: string, body: Record<string, any>) => Record<string, any> | undefined;
let tamper: Tamper | null = null;
/** Paths whose next answer the proxy cuts off (the connection drops mid-request). */
let drop: string | null = null;
/** While set, the proxy answers nothing at all (the phone is offline). */
let offline = false;
let proxy: Server;
let proxyUrl = '';
let servicePort = 0;

function startProxy(): Promise<void> {
  proxy = createHttpServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (offline) {
        req.socket.destroy();
        return;
      }
      if (drop && req.url!.includes(drop)) {
        drop = null;
        req.socket.destroy();
        return;
      }
      const up = httpRequest(
        { host: '127.0.0.1', port: servicePort, method: req.method, path: req.url, headers: req.headers },
        (r) => {
          const out: Buffer[] = [];
          r.on('data', (c: Buffer) => out.push(c));
          r.on('end', () => {
            let body = Buffer.concat(out);
            if (tamper && r.statusCode === 200) {
              const changed = tamper(req.url!, JSON.parse(body.toString('utf8')));
              if (changed) body = Buffer.from(JSON.stringify(changed));
            }
            const headers = { ...r.headers, 'content-length': String(body.length) };
            res.writeHead(r.statusCode!, headers);
            res.end(body);
          });
        },
      );
      up.end(Buffer.concat(chunks));
    });
  });
  return new Promise((resolve) =>
    proxy.listen(0, '127.0.0.1', () => {
      proxyUrl = `http://127.0.0.1:${(proxy.address() as { port: number }).port}`;
      resolve();
    }),
  );
}

/** What the keystore in IndexedDB holds now. */
async function stored(): Promise<{ keys: string[]; chain: number }> {
  const ks = await Keystore.open(await storage.get('keystore'), PASS);
  const chain = ((await storage.get('chain')) as unknown[]).length;
  return { keys: Object.keys(ks.data.epoch_keys ?? {}).sort(), chain };
}

before(async () => {
  const port = await freePort();
  servicePort = port;
  url = `http://127.0.0.1:${port}`;
  await startProxy();
  const log = openSync(join(tmp, 'service.log'), 'a');
  service = spawn(KEYSTEAD, ['serve', '--port', String(port), '--database-url', `sqlite:///${join(tmp, 'service.sqlite')}`], {
    env: { ...process.env, KEYSTEAD_ACCOUNTS_PER_SOURCE_HOUR: '1000000', KEYSTEAD_PAIRINGS_PER_SOURCE_HOUR: '1000000', KEYSTEAD_ACCESS_LOG: 'false' },
    stdio: ['ignore', log, log],
  });
  await waitFor(async () => {
    try {
      return (await fetch(url + '/v1/health')).ok ? true : undefined;
    } catch {
      return undefined;
    }
  }, 'the service to start', 90).catch((e: Error) => {
    throw new Error(`${e.message}: ${readFileSync(join(tmp, 'service.log'), 'utf8')}`);
  });
  cli(['account', 'create', ACCOUNT, '--server', url, '--device', 'laptop']);
  token = cli(['confirm', 'allow', 'bank.example']).stdout.split('rp token: ')[1]!.trim();
});

after(() => {
  service?.kill('SIGTERM');
  proxy?.close();
  rmSync(tmp, { recursive: true, force: true });
});

test('join from an invite: the fingerprint pins the account, the admin approves with the same verification number', async () => {
  const fp = JSON.parse(cli(['account', 'show', '--json']).stdout).account_fingerprint as string;
  const frag = '#' + new URLSearchParams({ join: ACCOUNT, fp }).toString();
  // An invite with another fingerprint is refused before any key is made or stored.
  const wrong = parseInvite('#' + new URLSearchParams({ join: ACCOUNT, fp: 'SHA256:' + 'A'.repeat(43) }).toString(), url + '/app/');
  await assert.rejects(PhoneDevice.join(wrong, 'phone', PASS, { scryptN: 1 << 14 }), VerificationFailed);
  assert.equal(await PhoneDevice.exists(), false);

  const invite = parseInvite(frag, proxyUrl + '/app/');
  assert.deepEqual(invite, { server: proxyUrl, account: ACCOUNT, fingerprint: fp });
  const { device, ticket } = await PhoneDevice.join(invite, 'phone', PASS, { scryptN: 1 << 14 });
  assert.equal(await PhoneDevice.exists(), true);
  assert.match(ticket.verification, /^\d{3} \d{3}$/);
  assert.equal(ticket.accountFingerprint, fp);
  assert.equal(await device.waitForApproval(AbortSignal.timeout(1500)), 'pending');
  const approved = cli(['device', 'approve', ticket.code, '--yes', '--scopes', 'confirm,totp,passwords']);
  assert.ok(approved.stderr.includes(`verification: ${ticket.verification}`), approved.stderr);
  assert.match(approved.stdout, /approved phone as member/);
  assert.equal(await device.waitForApproval(), 'approved');
  assert.deepEqual(device.me().scopes, ['_account', 'confirm', 'passwords', 'totp'].filter((s) => device.me().scopes.includes(s)));
  phone = device;
});

test('unlock: the keystore opens with the passphrase only', async () => {
  await assert.rejects(PhoneDevice.unlock('not it'), WrongPassphrase);
  const again = await PhoneDevice.unlock(PASS);
  assert.equal(again.account, ACCOUNT);
  assert.equal(again.name, 'phone');
  assert.equal(again.deviceId, phone.deviceId);
  phone = again;
  await phone.sync();
});

test('push: the phone registers its Web Push subscription with a signed request; extra members are not sent', async () => {
  const pair = (await crypto.subtle.generateKey({ name: 'ECDH', namedCurve: 'P-256' }, true, ['deriveBits'])) as CryptoKeyPair;
  const p256dh = b64e(new Uint8Array(await crypto.subtle.exportKey('raw', pair.publicKey)));
  const auth = b64e(crypto.getRandomValues(new Uint8Array(16)));
  const sub = { endpoint: 'https://fcm.googleapis.com/fcm/send/phone-e2e', expirationTime: null, keys: { p256dh, auth } };
  await phone.subscribePush(sub);
  // Read it back as this device (its own key, from the keystore in IndexedDB).
  const ks = await Keystore.open(await storage.get('keystore'), PASS);
  const key = await SigningKey.fromSeed(b64d(ks.data.device.signing, 32));
  const client = new ServiceClient(proxyUrl, { account: ACCOUNT, deviceId: phone.deviceId, key });
  const got = await client.request<{ subscription: unknown }>('GET', `/v1/accounts/${ACCOUNT}/push`);
  assert.deepEqual(got.subscription, { endpoint: sub.endpoint, keys: sub.keys });
  await assert.rejects(phone.subscribePush({ endpoint: 'https://evil.example/push', keys: { p256dh, auth } }), /push_allowed_hosts/);
});

test('a number-matching prompt: listed, opened, the right number approves and the RP verifies it', async () => {
  const req = rp(token, 'Log in from Berlin?');
  const number = await req.number;
  const p = await waitFor<Prompt>(async () => (await phone.prompts({ waitSeconds: 5 })).find((x) => x.message === 'Log in from Berlin?'), 'the prompt');
  assert.equal(p.rp, 'bank.example');
  assert.equal(p.numbers!.length, 9);
  assert.ok(p.numbers!.includes(number));
  assert.deepEqual(p.numbers, [...p.numbers!].sort((a, b) => a - b));
  await phone.answer(p, 'approve', number);
  const [code, out] = await req.done;
  assert.equal(code, 0);
  assert.equal(out, `number: ${number}\napproved\n`);
  assert.ok(!(await phone.prompts()).some((x) => x.id === p.id), 'an answered prompt leaves the list');
});

test('a lost connection: the error is typed, and the next poll lists the prompt once', async () => {
  const req = rp(token, 'Lost connection');
  const number = await req.number;
  drop = '/prompts';
  await assert.rejects(phone.prompts({ waitSeconds: 2 }), (e: KeysteadError) => e.code === 'network');
  const listed = await waitFor(async () => {
    const ps = (await phone.prompts()).filter((x) => x.message === 'Lost connection');
    return ps.length ? ps : undefined;
  }, 'the prompt');
  assert.equal(listed.length, 1);
  assert.equal((await phone.prompts()).filter((x) => x.message === 'Lost connection').length, 1);
  await phone.answer(listed[0]!, 'approve', number);
  assert.equal((await req.done)[0], 0);
});

test('a wrong number and a deny are the RP refusals; "this was not me" is reported', async () => {
  const req = rp(token, 'Wrong number');
  const number = await req.number;
  const p = await waitFor<Prompt>(async () => (await phone.prompts()).find((x) => x.message === 'Wrong number'), 'the prompt');
  await phone.answer(p, 'approve', p.numbers!.find((n) => n !== number));
  const [code, out, err] = await req.done;
  assert.equal(code, 4, err);
  assert.match(out, /denied/);

  const req2 = rp(token, 'Not me');
  await req2.number;
  const p2 = await waitFor<Prompt>(async () => (await phone.prompts()).find((x) => x.message === 'Not me'), 'the prompt');
  await phone.answer(p2, 'report');
  const [code2] = await req2.done;
  assert.equal(code2, 3);
});

test('a malicious service: a prompt whose envelope names another RP, or whose sealed bytes were changed, is refused', async () => {
  const req = rp(token, 'Tampered');
  await req.number;
  await waitFor(async () => ((await phone.prompts()).some((x) => x.message === 'Tampered') ? true : undefined), 'the prompt');
  // A fresh device (nothing cached) reads the same spool through the attacker.
  for (const [what, change] of [
    ['rp', (env: Record<string, any>) => ({ ...env, rp: 'other.example' })],
    ['ciphertext', (env: Record<string, any>) => {
      // the sealed-key record stays well-formed; one byte of its Umbral ciphertext changes
      const record = JSON.parse(fromUtf8(b64d(env.sealed)));
      const ct = b64d(record.ciphertext);
      ct[ct.length - 1]! ^= 1;
      return { ...env, sealed: b64e(cjson({ ...record, ciphertext: b64e(ct) })) };
    }],
  ] as const) {
    tamper = (path, body) => {
      if (!path.includes('/prompts')) return undefined;
      for (const m of body.prompts) m.body = b64e(cjson(change(JSON.parse(fromUtf8(b64d(m.body))))));
      return body;
    };
    const fresh = await PhoneDevice.unlock(PASS);
    const seen = await fresh.prompts();
    tamper = null;
    assert.ok(!seen.some((x) => x.message === 'Tampered'), `${what}: the tampered prompt is not listed`);
    const problems = fresh.problems();
    assert.ok(problems.length >= 1 && problems.every((p) => p instanceof VerificationFailed), `${what}: ${problems.map((p) => p.message)}`);
    if (what === 'rp') assert.match(problems[0]!.message, /posted by "other.example" claims to come from "bank.example"/);
  }
  const p = (await phone.prompts()).find((x) => x.message === 'Tampered')!;
  await phone.answer(p, 'deny');
  assert.equal((await req.done)[0], 1);
});

test('a malicious service: a forged chain entry is refused and nothing is stored', async () => {
  const before = await stored();
  const seq = phone.chain.seq;
  tamper = (path, body) => {
    if (!path.includes('/chain')) return undefined;
    // a removal of the admin, signed by the attacker's key (a random signature)
    const entry = cjson({ v: 2, account: ACCOUNT, seq: phone.chain.seq + 1, prev: phone.chain.head, time: 1800000000, type: 'device-removed', body: { id: 'ffffffffffffffff' } });
    return { entries: [...body.entries, { entry: b64e(entry), sig: b64e(new Uint8Array(64).fill(7)) }] };
  };
  await assert.rejects(phone.sync(), VerificationFailed);
  tamper = null;
  assert.equal(phone.chain.seq, seq);
  assert.deepEqual(await stored(), before);
});

test('a malicious service: a cfrag that does not verify is refused and no data key is stored', async () => {
  cli(['totp', 'add', `otpauth://totp/Bank:alice?secret=${TOTP_SECRET}&issuer=Bank`]);
  const before = await stored();
  assert.ok(!before.keys.some((k) => k.startsWith('totp:')));
  const fresh = await PhoneDevice.unlock(PASS);
  tamper = (path, body) => {
    if (!path.endsWith('/reencrypt')) return undefined;
    for (const c of body.cfrags) {
      const raw = b64d(c.cfrag);
      raw[raw.length - 40]! ^= 1;
      c.cfrag = b64e(raw);
    }
    return body;
  };
  await assert.rejects(fresh.totp(), VerificationFailed);
  tamper = null;
  assert.deepEqual((await stored()).keys, before.keys);
});

test('TOTP codes equal oathtool; a password added on the laptop is read', async () => {
  cli(['totp', 'add', `otpauth://totp/Example:alice?secret=${TOTP_SECRET}&issuer=Example&digits=8&algorithm=SHA256`]);
  cli(['passwords', 'add', 'https://bank.example/login', '--username', 'alice'], 'correct horse battery\n');
  const entry = (await phone.totp()).find((e) => e.issuer === 'Example');
  assert.ok(entry);
  assert.equal(entry.issuer, 'Example');
  assert.equal(entry.label, 'alice');
  assert.equal(entry.digits, 8);
  for (const t of [59, 1111111109, Math.floor(Date.now() / 1000)]) {
    const oath = spawnSync('oathtool', ['-b', '--totp=SHA256', '-d', '8', '-N', `@${t}`, TOTP_SECRET], { encoding: 'utf8' });
    assert.equal(oath.status, 0, oath.stderr);
    assert.equal(entry.code(t), oath.stdout.trim());
  }
  const pw = (await phone.passwords()).find((e) => e.url === 'https://bank.example/login');
  assert.ok(pw);
  assert.equal(pw.username, 'alice');
  assert.equal(pw.password, 'correct horse battery');
  assert.deepEqual(phone.problems(), []);
});

test('offline: TOTP codes and passwords come from the sealed items kept at the last sync, checked again', async () => {
  const online = await phone.totp();
  await phone.passwords();
  offline = true;
  try {
    const fresh = await PhoneDevice.unlock(PASS);
    const codes = await fresh.totp();
    assert.equal(fresh.offline, true);
    assert.deepEqual(codes.map((e) => [e.issuer, e.code(1111111109)]), online.map((e) => [e.issuer, e.code(1111111109)]));
    assert.ok((await fresh.passwords()).some((e) => e.password === 'correct horse battery'));
    assert.deepEqual(fresh.problems(), []);
    // Someone who can write IndexedDB (not the passphrase) changes a kept item: refused.
    const kept = (await storage.get('items:totp')) as { cursor: number; items: Record<string, any>[] };
    const sig = b64d(kept.items[0]!.sig);
    sig[0]! ^= 1;
    const changed = { ...kept, items: [{ ...kept.items[0], sig: b64e(sig) }, ...kept.items.slice(1)] };
    await storage.put({ 'items:totp': changed });
    assert.equal((await (await PhoneDevice.unlock(PASS)).totp()).length, 0, 'a changed copy is not used');
    // ... or drops one: the copy no longer matches the digest in the sealed keystore.
    await storage.put({ 'items:totp': { ...kept, items: kept.items.slice(1) } });
    assert.equal((await (await PhoneDevice.unlock(PASS)).totp()).length, 0, 'a shortened copy is not used');
    await storage.put({ 'items:totp': kept });
    assert.equal((await (await PhoneDevice.unlock(PASS)).totp()).length, online.length);
  } finally {
    offline = false;
  }
  const back = await PhoneDevice.unlock(PASS);
  assert.equal((await back.totp()).length, online.length);
  assert.equal(back.offline, false);
});

test('reads running at once (prompt long poll, TOTP, passwords, sync) after the chain grew agree on one chain', async () => {
  // Another device joins through the CLI: its device-added entry is new to the phone.
  await cliJoin('tablet', ['--scopes', 'totp,confirm']);
  const seq = phone.chain.seq;
  const [, totp, passwords] = await Promise.all([phone.sync(), phone.totp(), phone.passwords(), phone.prompts(), phone.prompts({ waitSeconds: 1 })]);
  assert.ok(phone.chain.seq > seq);
  assert.ok([...phone.chain.devices.values()].some((d) => d.name === 'tablet'));
  assert.ok(totp.length >= 2 && passwords.length >= 1);
  const again = await PhoneDevice.unlock(PASS);
  assert.equal(again.chain.seq, phone.chain.seq);
});

test('new epochs after another device is removed: a device with nothing cached reads old and new items and a prompt sealed before', async () => {
  const req = rp(token, 'Sealed before the new epoch');
  const number = await req.number;
  await waitFor(async () => ((await phone.prompts()).some((x) => x.message === 'Sealed before the new epoch') ? true : undefined), 'the prompt');
  cli(['device', 'remove', 'tablet']); // new epochs of _account, totp and confirm
  cli(['totp', 'add', `otpauth://totp/Shop:alice?secret=${TOTP_SECRET}&issuer=Shop`]);
  // Forget every cached data key, as a device that never read these collections.
  const ks = await Keystore.open(await storage.get('keystore'), PASS);
  delete ks.data.epoch_keys;
  await storage.put({ keystore: ks.toFile() });
  const fresh = await PhoneDevice.unlock(PASS);
  await fresh.sync();
  const totp = fresh.chain.collections.get('totp')!;
  assert.equal(Math.max(...totp.epochs.keys()), 2);
  const issuers = (await fresh.totp()).map((e) => e.issuer).sort();
  assert.deepEqual(issuers, ['Bank', 'Example', 'Shop']);
  const keys = (await stored()).keys;
  assert.ok(keys.includes('totp:1') && keys.includes('totp:2'), keys.join(' '));
  // The prompt was sealed to confirm's epoch 1: opened through epoch 2's grant, walking back.
  const sealedTo: number[] = [];
  tamper = (path, body) => {
    if (path.includes('/prompts')) {
      for (const m of body.prompts) sealedTo.push(JSON.parse(fromUtf8(b64d(JSON.parse(fromUtf8(b64d(m.body))).sealed))).epoch);
    }
    return undefined; // only watching
  };
  const p = (await fresh.prompts()).find((x) => x.message === 'Sealed before the new epoch');
  tamper = null;
  assert.deepEqual([...new Set(sealedTo)], [1]);
  assert.equal(Math.max(...fresh.chain.collections.get('confirm')!.epochs.keys()), 2);
  assert.ok(p, JSON.stringify(fresh.problems().map((e) => e.message)));
  await fresh.answer(p, 'approve', number);
  assert.equal((await req.done)[0], 0);
  assert.deepEqual(fresh.problems(), []);
});

test('an admin removed: the phone follows the account key rotation and reads through grants by the new kfrag signer', async () => {
  await cliJoin('desktop', ['--role', 'admin']);
  const before = phone.chain.keyGeneration;
  cli(['device', 'remove', 'desktop']); // account-key-rotated, every grant re-signed
  const ks = await Keystore.open(await storage.get('keystore'), PASS);
  delete ks.data.epoch_keys;
  await storage.put({ keystore: ks.toFile() });
  const fresh = await PhoneDevice.unlock(PASS);
  await fresh.sync();
  assert.equal(fresh.chain.keyGeneration, before + 1);
  assert.notEqual(Buffer.from(fresh.chain.signingKey).toString('hex'), Buffer.from(fresh.chain.accountKey).toString('hex'));
  assert.equal((await fresh.totp()).length, 3);
  assert.ok((await fresh.passwords()).some((e) => e.password === 'correct horse battery'));
  const req = rp(token, 'After the rotation');
  const number = await req.number;
  const p = await waitFor<Prompt>(async () => (await fresh.prompts()).find((x) => x.message === 'After the rotation'), 'the prompt');
  await fresh.answer(p, 'approve', number);
  assert.equal((await req.done)[0], 0);
});

test('removal: the next sync throws DeviceRemoved, and wipe leaves nothing', async () => {
  cli(['device', 'remove', 'phone']);
  await assert.rejects(phone.sync(), DeviceRemoved);
  await assert.rejects(phone.prompts(), DeviceRemoved);
  await phone.wipe();
  assert.equal(await PhoneDevice.exists(), false);
});

test('the service log has no traceback', () => {
  assert.ok(!readFileSync(join(tmp, 'service.log'), 'utf8').includes('Traceback'));
});
