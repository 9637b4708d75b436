/** Vault items of the `passwords` collection (docs/passwords.md, item format version 2). */
import { parseCanonical, isInt } from './encoding.js';
import { FormatError, UnsupportedVersion } from './errors.js';

export interface VaultEntry {
  id: string;
  type: 'login' | 'note' | 'card' | 'identity' | 'ssh-key';
  name: string;
  url: string;
  other_urls: string[];
  username: string;
  password: string;
  otpauth: string | null;
  notes: string;
  folder: string;
  fields: [string, string, string][];
  details: [string, string][];
  created: number;
  updated: number;
}

const KEYS = [
  'id', 'type', 'name', 'url', 'other_urls', 'username', 'password', 'otpauth', 'notes', 'folder', 'fields',
  'details', 'passkeys', 'extra', 'created', 'updated', 'history', 'had_conflict', 'lineage',
];
const TYPES = ['login', 'note', 'card', 'identity', 'ssh-key'];

const str = (o: Record<string, unknown>, k: string): string => {
  if (typeof o[k] !== 'string') throw new FormatError(`vault item: ${k} must be a string`);
  return o[k];
};
const strList = (o: Record<string, unknown>, k: string): string[] => {
  const v = o[k];
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw new FormatError(`vault item: ${k} must be a list of strings`);
  return v as string[];
};
function tuples(o: Record<string, unknown>, k: string, n: number): string[][] {
  const v = o[k];
  if (!Array.isArray(v) || !v.every((t) => Array.isArray(t) && t.length === n && t.every((x) => typeof x === 'string'))) {
    throw new FormatError(`vault item: ${k} must be a list of ${n}-string lists`);
  }
  return v as string[][];
}

/** Parse one vault item plaintext: `{"v": 2, "entry": {...}}`, every key required, no other. */
export function parseVaultItem(raw: Uint8Array): VaultEntry {
  const obj = parseCanonical(raw, 'vault item', 2 << 20);
  if (obj.v !== 2) throw new UnsupportedVersion(`vault item of version ${JSON.stringify(obj.v)}; this app reads version 2`);
  const e = obj.entry as Record<string, unknown> | undefined;
  if (Object.keys(obj).length !== 2 || !e || typeof e !== 'object' || Array.isArray(e)) throw new FormatError('vault item: expected {v, entry}');
  const keys = Object.keys(e);
  if (keys.length !== KEYS.length || !KEYS.every((k) => k in e)) throw new FormatError('vault item: wrong set of keys');
  const type = str(e, 'type');
  if (!TYPES.includes(type)) throw new FormatError(`vault item: unknown type ${type}`);
  if (e.otpauth !== null && (typeof e.otpauth !== 'string' || e.otpauth === '')) throw new FormatError('vault item: otpauth is a URI or null');
  if (!isInt(e.created) || !isInt(e.updated)) throw new FormatError('vault item: created and updated are integers');
  strList(e, 'lineage');
  if (typeof e.had_conflict !== 'boolean') throw new FormatError('vault item: had_conflict must be a boolean');
  return {
    id: str(e, 'id'),
    type: type as VaultEntry['type'],
    name: str(e, 'name'),
    url: str(e, 'url'),
    other_urls: strList(e, 'other_urls'),
    username: str(e, 'username'),
    password: str(e, 'password'),
    otpauth: e.otpauth as string | null,
    notes: str(e, 'notes'),
    folder: str(e, 'folder'),
    fields: tuples(e, 'fields', 3) as [string, string, string][],
    details: tuples(e, 'details', 2) as [string, string][],
    created: e.created,
    updated: e.updated,
  };
}
