/** Requests to the service (PROTOCOL.md section 11): `Keystead-Protocol: 2` on every /v1/
 * request, and signed requests whose signature covers method, origin, path with query, body
 * digest, time, nonce, account and device. */
import { b64e, concat, hex, randomBytes, sha256, utf8 } from './encoding.js';
import { LABELS, type SigningKey } from './crypto.js';
import { DeviceRemoved, KeysteadError, ServiceError } from './errors.js';

export interface Signer {
  account: string;
  deviceId: string;
  key: SigningKey;
}

/** `scheme://host[:port]`, lower-cased, as the client names the service. */
export function originOf(server: string): string {
  const u = new URL(server);
  return `${u.protocol}//${u.host}`.toLowerCase();
}

/** The exact bytes a signed request's signature covers (before the purpose prefix). */
export function requestMessage(m: {
  method: string;
  origin: string;
  path: string;
  digest: string;
  time: number;
  nonce: string;
  account: string;
  device: string;
}): Uint8Array {
  return utf8([m.method, m.origin, m.path, m.digest, String(m.time), m.nonce, m.account, m.device].join('\n'));
}

export function pathOf(...parts: string[]): string {
  return '/v1/' + parts.map((p) => encodeURIComponent(p)).join('/');
}

export class ServiceClient {
  readonly server: string;
  readonly origin: string;
  constructor(
    server: string,
    private signer: Signer | null = null,
    private clock: () => number = () => Date.now() / 1000,
  ) {
    this.server = server.replace(/\/+$/, '');
    this.origin = originOf(this.server);
  }

  withSigner(signer: Signer): ServiceClient {
    return new ServiceClient(this.server, signer, this.clock);
  }

  async request<T = Record<string, unknown>>(
    method: string,
    path: string,
    opts: { body?: unknown; query?: Record<string, string | number>; signed?: boolean; signal?: AbortSignal } = {},
  ): Promise<T> {
    let full = path;
    if (opts.query) {
      const q = new URLSearchParams(Object.entries(opts.query).map(([k, v]) => [k, String(v)])).toString();
      if (q) full += '?' + q;
    }
    const body = opts.body === undefined ? new Uint8Array() : utf8(JSON.stringify(opts.body));
    const headers: Record<string, string> = { 'Keystead-Protocol': '2', Accept: 'application/json' };
    if (opts.body !== undefined) headers['Content-Type'] = 'application/json';
    const signed = opts.signed ?? this.signer !== null;
    if (signed) {
      const s = this.signer;
      if (!s) throw new KeysteadError('not_enrolled', 'this request needs a device signature');
      const digest = hex(sha256(body));
      const time = Math.floor(this.clock());
      const nonce = b64e(randomBytes(16));
      const msg = requestMessage({ method, origin: this.origin, path: full, digest, time, nonce, account: s.account, device: s.deviceId });
      headers['keystead-device'] = `${s.account}/${s.deviceId}`;
      headers['keystead-time'] = String(time);
      headers['keystead-nonce'] = nonce;
      headers['keystead-content-sha256'] = digest;
      headers['keystead-signature'] = b64e(await s.key.sign(LABELS.REQUEST, msg));
    }
    let resp: Response;
    try {
      const init: RequestInit = { method, headers, cache: 'no-store' };
      if (opts.body !== undefined) init.body = body as Uint8Array<ArrayBuffer>;
      if (opts.signal) init.signal = opts.signal;
      resp = await fetch(this.server + full, init);
    } catch (e) {
      if ((e as Error)?.name === 'AbortError') throw e;
      throw new ServiceError(0, 'network', `cannot reach ${this.origin}: ${(e as Error)?.message ?? e}`);
    }
    const text = await resp.text();
    let obj: unknown = null;
    try {
      obj = text ? JSON.parse(text) : null;
    } catch {
      obj = null;
    }
    if (!resp.ok) {
      const o = (obj ?? {}) as { error?: unknown; message?: unknown };
      const code = typeof o.error === 'string' ? o.error : `http_${resp.status}`;
      const message = typeof o.message === 'string' ? o.message : `${method} ${path}: HTTP ${resp.status}`;
      if (code === 'device_removed') throw new DeviceRemoved(message);
      throw new ServiceError(resp.status, code, message);
    }
    if (obj === null || typeof obj !== 'object') throw new ServiceError(resp.status, 'bad_answer', `${method} ${path}: not a JSON object`);
    return obj as T;
  }
}

export { concat };
