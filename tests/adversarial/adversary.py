"""An attacker written from docs/PROTOCOL.md, docs/FORMAT.md and docs/MESSAGING.md alone.

It holds what a removed device keeps (its keystore file and passphrase), copies of the
service's SQLite database, and files that travel in the clear (protected documents). It uses
only ``umbral_pre``, ``cryptography``, ``sqlite3``, json and base64: none of Keystead's code.

It collects every secret it can reach and tries every one on everything, until nothing new
opens:

- every 32-byte value in the keystore (and in anything it opens) is tried both as an Umbral
  secret key and as a ChaCha20-Poly1305 key;
- every capsule (epoch data keys in every chain copy, sealed-key records in documents,
  messages and items, recovery blobs) is tried with ``decrypt_original`` under every secret
  key, and re-encrypted with every kfrag of every database copy whose receiving key it holds,
  then ``decrypt_reencrypted``;
- every epoch's ``previous`` is opened with every data key (associated data per the docs);
- every item of every database copy is opened with every data key (associated data from its
  own row); every message body with every key it has opened; every document with every
  32-byte key.

What it opens is kept as plaintexts; a test then looks for its canaries in them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import sqlite3
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import umbral_pre as u
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

CAPSULE = 105


def b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def aead_open(key: bytes, sealed: bytes, ad: bytes) -> bytes | None:
    """PROTOCOL.md 1: nonce(12) || ChaCha20-Poly1305 ciphertext || tag(16)."""
    if len(sealed) < 28:
        return None
    try:
        return ChaCha20Poly1305(key).decrypt(sealed[:12], sealed[12:], ad)
    except InvalidTag:
        return None


# --------------------------------------------------------------------------- keystore
def open_keystore(path: Path, passphrase: str) -> dict[str, Any]:
    """FORMAT.md "Keystore": scrypt, then ChaCha20-Poly1305 with AD "keystead/v2/keystore"."""
    doc = json.loads(path.read_text())
    assert doc["keystead-keystore"] == 2
    kdf = doc["kdf"]
    key = Scrypt(salt=b64d(kdf["salt"]), length=32, n=kdf["n"], r=kdf["r"], p=kdf["p"]).derive(
        passphrase.encode()
    )
    plain = aead_open(key, b64d(doc["sealed"]), b"keystead/v2/keystore")
    assert plain is not None, "the keystore did not open with its passphrase"
    contents: dict[str, Any] = json.loads(plain)
    return contents


def strings(value: Any) -> Iterator[str]:
    """Every string in a JSON value, keys included."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings(v)


def harvest(value: Any, depth: int = 0) -> set[bytes]:
    """Every 32-byte value in a JSON value (base64 of any flavour, hex), and in any JSON
    that a base64 string decodes to (the account secrets inside the keystore, for one)."""
    out: set[bytes] = set()
    for s in strings(value):
        for raw in _decodings(s):
            if len(raw) == 32:
                out.add(raw)
            elif depth < 4 and raw[:1] in (b"{", b"["):
                try:
                    out |= harvest(json.loads(raw), depth + 1)
                except ValueError:
                    pass
    return out


def _decodings(s: str) -> Iterator[bytes]:
    for decode in (b64d, lambda t: base64.b64decode(t + "=" * (-len(t) % 4)), bytes.fromhex):
        try:
            yield decode(s)
        except (binascii.Error, ValueError):
            pass


# --------------------------------------------------------------------------- snapshots
@dataclass
class Snapshot:
    """What one copy of the service's database holds."""

    name: str
    chains: dict[str, list[dict[str, Any]]]
    items: list[dict[str, Any]]
    grants: list[dict[str, Any]]
    recovery_blobs: list[bytes]
    spool: list[bytes]
    records: list[bytes]

    @classmethod
    def load(cls, name: str, path: Path) -> Snapshot:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        db.row_factory = sqlite3.Row
        try:
            chains: dict[str, list[dict[str, Any]]] = {}
            for r in db.execute("SELECT account, seq, entry FROM chain_entries ORDER BY seq"):
                chains.setdefault(r["account"], []).append(json.loads(r["entry"]))
            items = [
                dict(r)
                for r in db.execute(
                    "SELECT account, collection, item_id, version, epoch, ciphertext, deleted, "
                    "writer FROM items"
                )
            ]
            grants = [
                dict(r)
                for r in db.execute(
                    "SELECT account, key, epoch, target_kind, target, target_generation, kfrag "
                    "FROM grants"
                )
            ]
            blobs = [r[0] for r in db.execute("SELECT recovery_blob FROM accounts") if r[0]]
            spool = [r[0] for r in db.execute("SELECT body FROM spool")]
            records = [r[0] for r in db.execute("SELECT value FROM records")]
        finally:
            db.close()
        return cls(name, chains, items, grants, blobs, spool, records)


def copy_database(src: Path, dst: Path) -> None:
    """A consistent copy of a live SQLite database (WAL included), as a backup would take."""
    with sqlite3.connect(f"file:{src}?mode=ro", uri=True) as a, sqlite3.connect(dst) as b:
        a.backup(b)
    b.close()
    a.close()


# --------------------------------------------------------------------------- the public chain
@dataclass
class Catalog:
    """Public facts from every chain copy: epochs, device PRE keys, sharing keys, recovery keys."""

    epochs: dict[tuple[str, str, int], dict[str, Any]] = field(default_factory=dict)
    device_pre: dict[tuple[str, str], bytes] = field(default_factory=dict)
    sharing: dict[tuple[str, int], bytes] = field(default_factory=dict)
    recovery: dict[str, bytes] = field(default_factory=dict)

    def add_chain(self, account: str, entries: list[dict[str, Any]]) -> None:
        for e in entries:
            body, kind = e["body"], e["type"]
            if kind == "account-created":
                self.sharing[(account, 0)] = b64d(body["sharing_key"])
                self.recovery[account] = b64d(body["recovery_key"])
            elif kind == "device-added":
                self.device_pre[(account, body["id"])] = b64d(body["pre_key"])
            elif kind == "sharing-key":
                self.sharing[(account, body["generation"])] = b64d(body["public_key"])
            elif kind == "epoch":
                self.epochs[(account, body["collection"], body["epoch"])] = {
                    k: (b64d(v) if k in ("public_key", "capsule", "ciphertext", "previous") else v)
                    for k, v in body.items()
                }

    def epoch_key(self, account: str, key: str, epoch: int) -> bytes | None:
        info = self.epochs.get((account, key, epoch))
        return None if info is None else bytes(info["public_key"])


# --------------------------------------------------------------------------- the attack
@dataclass
class Capsule:
    capsule: bytes
    ciphertext: bytes
    delegating: bytes | None
    what: str


@dataclass
class Attack:
    """Run with :meth:`run`; ``plaintexts`` is everything it opened, ``log`` how."""

    secrets: set[bytes]
    plaintexts: list[bytes] = field(default_factory=list)
    log: list[str] = field(default_factory=list)
    sks: dict[bytes, u.SecretKey] = field(default_factory=dict)
    keys: set[bytes] = field(default_factory=set)

    def learn(self, raw: bytes, how: str) -> bool:
        """A 32-byte value: an AEAD key and, if it is a valid scalar, an Umbral secret key."""
        new = False
        if len(raw) != 32:
            return False
        if raw not in self.keys:
            self.keys.add(raw)
            new = True
        try:
            sk = u.SecretKey.from_be_bytes(raw)
        except (ValueError, TypeError):
            return new
        pk = bytes(sk.public_key().to_compressed_bytes())
        if pk not in self.sks:
            self.sks[pk] = sk
            self.log.append(f"secret key {pk.hex()[:16]} from {how}")
            new = True
        return new

    def run(self, snapshots: Iterable[Snapshot], documents: Iterable[Path] = ()) -> None:
        snaps = list(snapshots)
        for s in self.secrets:
            self.learn(s, "the keystore")
        cat = Catalog()
        for snap in snaps:
            for account, entries in snap.chains.items():
                cat.add_chain(account, entries)
        capsules: dict[bytes, Capsule] = {}
        for (acct, coll, e), info in cat.epochs.items():
            if "capsule" in info:
                capsules[info["capsule"]] = Capsule(
                    info["capsule"], info["ciphertext"], info["public_key"], f"{acct}/{coll}#{e}"
                )
        for snap in snaps:
            for blob in snap.recovery_blobs:
                capsules[blob[:CAPSULE]] = Capsule(
                    blob[:CAPSULE], blob[CAPSULE:], None, "recovery blob"
                )
        messages = [m for snap in snaps for m in _messages(snap.spool)]
        docs = [_document(p.read_bytes()) for p in documents]
        for rec in (
            [m["record"] for m in messages]
            + [d["record"] for d in docs]
            + [r for snap in snaps for r in snap.records]
        ):
            self._add_record(rec, cat, capsules)
        for raw in [b for snap in snaps for b in snap.spool + snap.records]:
            for rec in _records_in(raw):  # sealed keys anywhere else (confirmation prompts)
                self._add_record(rec, cat, capsules)
        kfrags = {g["kfrag"]: g for snap in snaps for g in snap.grants}
        items = {i["ciphertext"]: i for snap in snaps for i in snap.items}
        opened: set[bytes] = set()
        tried: set[tuple[bytes, bytes]] = set()
        while True:
            before = (len(self.keys), len(self.sks))
            self._open_capsules(capsules, kfrags, cat, opened, tried)
            self._open_previous(cat, opened, tried)
            self._open_items(items, opened, tried, cat, capsules)
            self._open_messages(messages, opened, tried)
            self._open_documents(docs, opened, tried)
            if (len(self.keys), len(self.sks)) == before:
                return

    # -- capsules
    def _add_record(self, raw: bytes, cat: Catalog, capsules: dict[bytes, Capsule]) -> None:
        """A sealed-key record (FORMAT.md): the capsule is under epoch ``epoch`` of
        ``owner``'s ``key``."""
        try:
            rec = json.loads(raw)
            capsule, ct = b64d(rec["capsule"]), b64d(rec["ciphertext"])
        except (ValueError, KeyError, TypeError, binascii.Error):
            return
        pk = cat.epoch_key(rec["owner"], rec["key"], rec["epoch"])
        capsules.setdefault(
            capsule, Capsule(capsule, ct, pk, f"record {rec['owner']}/{rec['key']}#{rec['epoch']}")
        )

    def _receiving(self, g: dict[str, Any], cat: Catalog) -> bytes | None:
        if g["target_kind"] == "device":
            return cat.device_pre.get((g["account"], g["target"]))
        return cat.sharing.get((g["target"], g["target_generation"]))

    def _open_capsules(
        self,
        capsules: dict[bytes, Capsule],
        kfrags: dict[bytes, Any],
        cat: Catalog,
        opened: set[bytes],
        tried: set[Any],
    ) -> None:
        for c in capsules.values():
            if c.capsule in opened:
                continue
            cap = u.Capsule.from_bytes(c.capsule)
            for pk, sk in list(self.sks.items()):
                if (c.capsule, pk) in tried:
                    continue
                tried.add((c.capsule, pk))
                try:
                    plain = bytes(u.decrypt_original(sk, cap, c.ciphertext))
                except ValueError:
                    continue
                self._opened(c, plain, f"its own secret key {pk.hex()[:16]}", opened)
                break
            if c.capsule in opened:
                continue
            for kfrag, g in kfrags.items():
                delegating = cat.epoch_key(g["account"], g["key"], g["epoch"])
                receiving = self._receiving(g, cat)
                # Every kfrag whose receiving key it holds, on every capsule (a kfrag for
                # another epoch only yields a failed decryption, which is the point).
                if receiving not in self.sks or delegating is None:
                    continue
                if (c.capsule, kfrag) in tried:
                    continue
                tried.add((c.capsule, kfrag))
                cfrag = u.reencrypt(cap, u.KeyFrag.from_bytes(kfrag).skip_verification())
                try:
                    plain = bytes(
                        u.decrypt_reencrypted(
                            self.sks[receiving],
                            u.PublicKey.from_compressed_bytes(delegating),
                            cap,
                            [cfrag],
                            c.ciphertext,
                        )
                    )
                except ValueError:
                    continue
                self._opened(
                    c,
                    plain,
                    f"the kfrag {g['account']}/{g['key']}#{g['epoch']} -> "
                    f"{g['target_kind']} {g['target']}",
                    opened,
                )
                break

    def _opened(self, c: Capsule, plain: bytes, how: str, opened: set[bytes]) -> None:
        opened.add(c.capsule)
        self.plaintexts.append(plain)
        self.log.append(f"opened {c.what} with {how}")
        self.learn(plain, c.what)
        self._learn_json(plain, c.what)

    def _learn_json(self, plain: bytes, how: str) -> None:
        if plain[:1] in (b"{", b"["):
            try:
                for raw in harvest(json.loads(plain)):
                    self.learn(raw, how)
            except ValueError:
                pass

    # -- AEAD
    def _open_previous(self, cat: Catalog, opened: set[bytes], tried: set[Any]) -> None:
        for (acct, coll, e), info in cat.epochs.items():
            prev = info.get("previous")
            if prev is None or prev in opened:
                continue
            ad = b"\x00".join(
                (
                    b"keystead/v2/epoch/previous-secret",
                    acct.encode(),
                    coll.encode(),
                    struct.pack(">Q", e),
                )
            )
            for k in list(self.keys):
                if (prev, k) in tried:
                    continue
                tried.add((prev, k))
                plain = aead_open(k, prev, ad)
                if plain is not None:
                    opened.add(prev)
                    self.log.append(f"opened previous of {acct}/{coll}#{e}")
                    self.learn(plain, f"previous of {acct}/{coll}#{e}")
                    break

    def _open_items(
        self,
        items: dict[bytes, dict[str, Any]],
        opened: set[bytes],
        tried: set[Any],
        cat: Catalog,
        capsules: dict[bytes, Capsule],
    ) -> None:
        for ct, i in items.items():
            if ct in opened:
                continue
            ad = b"\x00".join(
                (
                    b"keystead/v2/item",
                    i["account"].encode(),
                    i["collection"].encode(),
                    i["item_id"].encode(),
                    struct.pack(">QQ?", i["version"], i["epoch"], bool(i["deleted"])),
                    i["writer"].encode(),
                )
            )
            for k in list(self.keys):
                if (ct, k) in tried:
                    continue
                tried.add((ct, k))
                plain = aead_open(k, ct, ad)
                if plain is not None:
                    opened.add(ct)
                    self.plaintexts.append(plain)
                    where = f"item {i['account']}/{i['collection']}/{i['item_id']}"
                    self.log.append(f"opened {where} (epoch {i['epoch']})")
                    self.learn(plain, where)
                    self._learn_json(plain, where)
                    self._add_record(plain, cat, capsules)
                    break

    def _open_messages(
        self, messages: list[dict[str, Any]], opened: set[bytes], tried: set[Any]
    ) -> None:
        for m in messages:
            body = m["body"]
            if body in opened:
                continue
            for k in list(self.keys):
                if (body, k) in tried:
                    continue
                tried.add((body, k))
                plain = aead_open(k, body, m["ad"])
                if plain is not None:
                    opened.add(body)
                    self.plaintexts.append(plain)
                    self.log.append("opened a message body")
                    break

    def _open_documents(
        self, docs: list[dict[str, Any]], opened: set[bytes], tried: set[Any]
    ) -> None:
        for d in docs:
            if d["body"] in opened:
                continue
            for k in list(self.keys):
                if (d["body"], k) in tried:
                    continue
                tried.add((d["body"], k))
                plain = _document_body(d, k)
                if plain is not None:
                    opened.add(d["body"])
                    self.plaintexts.append(plain)
                    self.log.append(f"opened document {d['owner']}/{d['label']}")
                    break

    def opened(self, canary: str) -> bool:
        needle = canary.encode()
        return any(needle in p for p in self.plaintexts)


def _records_in(raw: bytes, depth: int = 0) -> Iterator[bytes]:
    """Every sealed-key record inside a JSON document, its strings decoded as base64."""
    try:
        value = json.loads(raw)
    except ValueError:
        return
    if isinstance(value, dict) and {"capsule", "ciphertext", "owner", "key"} <= set(value):
        yield raw
        return
    if depth > 3:
        return
    for s in strings(value):
        for inner in _decodings(s):
            if inner[:1] == b"{":
                yield from _records_in(inner, depth + 1)


# --------------------------------------------------------------------------- messages
def _messages(bodies: Iterable[bytes]) -> Iterator[dict[str, Any]]:
    """docs/MESSAGING.md: a spool entry is a signed envelope whose body (format 2) has a
    ``key`` that is a sealed-key record and a ``body`` that is AEAD under the message key."""
    for raw in bodies:
        try:
            wire = json.loads(raw)
            env = json.loads(b64d(wire["body"]))
            header = {k: env[k] for k in ("v", "id", "from", "device", "time", "group")}
        except (ValueError, KeyError, TypeError, binascii.Error):
            continue
        ad = (
            b"keystead/v1/messaging/body\x00"
            + json.dumps(header, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        )
        yield {"record": b64d(env["key"]), "body": b64d(env["body"]), "ad": ad}


# --------------------------------------------------------------------------- documents
def _document(raw: bytes) -> dict[str, Any]:
    """FORMAT.md "Documents (.kst)": the header's fields; ``sealed_key`` is the data key's
    sealed-key record."""
    assert raw[:20] == b"keystead-document/2\n"
    (hlen,) = struct.unpack(">H", raw[20:22])
    header, body, pos = raw[: 22 + hlen], raw[22 + hlen :], 22

    def take(n: int) -> bytes:
        nonlocal pos
        out = raw[pos : pos + n]
        pos += n
        return out

    owner = take(take(1)[0]).decode()
    label = take(take(1)[0]).decode()
    take(struct.unpack(">H", take(2))[0])  # service url
    take(16 + 8)  # document id, created
    (chunk,) = struct.unpack(">I", take(4))
    prefix = take(7)
    record = take(struct.unpack(">H", take(2))[0])
    assert pos == len(header)
    return {
        "owner": owner,
        "label": label,
        "header": header,
        "body": body,
        "chunk": chunk,
        "prefix": prefix,
        "record": record,
    }


def _document_body(d: dict[str, Any], data_key: bytes) -> bytes | None:
    key = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=hashlib.sha256(d["header"]).digest(),
        info=b"keystead/v1/documents/payload-key",
    ).derive(data_key)
    size, body, out = d["chunk"] + 16, d["body"], []
    pieces = [body[i : i + size] for i in range(0, len(body), size)] or [b""]
    for i, piece in enumerate(pieces):
        nonce = d["prefix"] + struct.pack(">I", i) + (b"\x01" if i == len(pieces) - 1 else b"\x00")
        try:
            out.append(AESGCM(key).decrypt(nonce, piece, None))
        except (InvalidTag, ValueError):
            return None
    return b"".join(out)
