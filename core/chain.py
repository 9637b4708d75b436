"""The account chain: an append-only, hash-linked list of entries signed by the account key.

Pure protocol logic: :func:`verify_chain` and :meth:`ChainState.extend` take
signed bytes and return a new state or raise; nothing here does I/O. The same
code checks an append at the service and a download at every client.

Each entry travels as :class:`SignedEntry`: the exact canonical-JSON bytes that
were signed, the account signature, and (for ``device-added``) the device's
countersignature. Bytes are verified before they are parsed.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from . import labels
from ._encoding import b64d, b64e, canonical_json, parse_json_object
from ._umbral import CAPSULE_SIZE, PREPublicKey
from .crypto import SigningKey, VerifyKey
from .errors import (
    FormatError,
    InvalidSignature,
    RollbackDetected,
    UnsupportedVersion,
    VerificationError,
)

__all__ = [
    "ChainState",
    "CollectionInfo",
    "DeviceInfo",
    "SignedEntry",
    "check_head",
    "device_statement",
    "make_entry",
    "sign_device_statement",
    "verify_chain",
]

CHAIN_VERSION = 2
ROLES = ("admin", "member")
KINDS = ("items", "keys")
"""A collection holds items (its epochs carry a data key, and each wraps the previous epoch's
secret) or sealed keys only (labels and groups: each opened through a grant, one at a time)."""
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
_COLLECTION_RE = re.compile(r"^[a-z_][a-z0-9_./-]{0,127}$")
MAX_ENTRY_BYTES = 16 * 1024


def check_name(name: str, what: str = "name") -> str:
    """Account and device names: lower-case letters, digits, '.', '_' and '-'."""
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise FormatError(f"invalid {what} {name!r}: use a-z, 0-9, '.', '_', '-' (max 63)")
    return name


def check_collection(name: str) -> str:
    if not isinstance(name, str) or not _COLLECTION_RE.match(name):
        raise FormatError(f"invalid collection name {name!r}")
    return name


@dataclass(frozen=True)
class SignedEntry:
    """One chain entry as it travels: exact signed bytes plus signatures."""

    entry: bytes
    signature: bytes
    device_signature: bytes | None = None
    new_key_signature: bytes | None = None
    """On ``account-key-rotated`` only: the new account key's signature over the entry."""

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.entry).hexdigest()

    def to_json(self) -> dict[str, str]:
        out = {"entry": b64e(self.entry), "sig": b64e(self.signature)}
        if self.device_signature is not None:
            out["device_sig"] = b64e(self.device_signature)
        if self.new_key_signature is not None:
            out["new_key_sig"] = b64e(self.new_key_signature)
        return out

    @classmethod
    def from_json(cls, obj: object) -> SignedEntry:
        if not isinstance(obj, Mapping) or not set(obj) <= {
            "entry",
            "sig",
            "device_sig",
            "new_key_sig",
        }:
            raise FormatError("chain entry: unexpected fields")
        entry = b64d(obj.get("entry"), what="chain entry")
        if len(entry) > MAX_ENTRY_BYTES:
            raise FormatError("chain entry too large")
        sig = b64d(obj.get("sig"), size=64, what="chain signature")
        dsig, nsig = obj.get("device_sig"), obj.get("new_key_sig")
        return cls(
            entry,
            sig,
            None if dsig is None else b64d(dsig, size=64, what="device signature"),
            None if nsig is None else b64d(nsig, size=64, what="new key signature"),
        )


@dataclass(frozen=True)
class DeviceInfo:
    """A device as the chain describes it."""

    id: str
    name: str
    role: str
    scopes: tuple[str, ...]
    signing_key: VerifyKey
    pre_key: PREPublicKey
    ssh_key: bytes
    added_seq: int
    added_time: int
    removed_seq: int | None = None

    @property
    def live(self) -> bool:
        return self.removed_seq is None

    @property
    def fingerprint(self) -> str:
        return self.signing_key.fingerprint

    def can_read(self, collection: str) -> bool:
        return self.live and collection in self.scopes


@dataclass(frozen=True)
class EpochInfo:
    """One epoch of a collection: its own Umbral public key, its data key sealed to that key
    (``capsule``, ``ciphertext``: items collections only), and the previous epoch's secret
    key wrapped under this epoch's data key (``previous``, from epoch 2 on)."""

    epoch: int
    public_key: PREPublicKey
    seq: int
    capsule: bytes | None = None
    ciphertext: bytes | None = None
    previous: bytes | None = None


@dataclass(frozen=True)
class CollectionInfo:
    """A collection and its epochs; the newest epoch's key is the one everything new uses."""

    name: str
    kind: str
    epochs: Mapping[int, EpochInfo]

    @property
    def current_epoch(self) -> int:
        return max(self.epochs)

    @property
    def current(self) -> EpochInfo:
        return self.epochs[self.current_epoch]

    @property
    def public_key(self) -> PREPublicKey:
        """The current epoch's public key: what new data is sealed to."""
        return self.current.public_key

    def epoch(self, epoch: int) -> EpochInfo:
        try:
            return self.epochs[epoch]
        except KeyError:
            raise VerificationError(f"{self.name}: epoch {epoch} is not in the chain") from None


@dataclass(frozen=True)
class ChainState:
    """What a verified chain says about an account, up to its head."""

    account: str
    account_key: VerifyKey
    """The account's first key: its identity, which devices and relying parties pin."""
    signing_key: VerifyKey
    """The key of the current generation, which signs every new entry."""
    key_generation: int
    kfrag_signer: PREPublicKey
    recovery_key: PREPublicKey
    devices: Mapping[str, DeviceInfo]
    collections: Mapping[str, CollectionInfo]
    sharing_keys: Mapping[int, PREPublicKey]
    seq: int
    head: str
    created: int
    digests: tuple[str, ...] = field(default=(), repr=False)

    @property
    def live_devices(self) -> list[DeviceInfo]:
        return [d for d in self.devices.values() if d.live]

    @property
    def sharing_generation(self) -> int:
        return max(self.sharing_keys)

    @property
    def sharing_key(self) -> PREPublicKey:
        return self.sharing_keys[self.sharing_generation]

    @property
    def fingerprint(self) -> str:
        """The pinned identity's fingerprint (the first account key's)."""
        return self.account_key.fingerprint

    def device(self, device_id: str) -> DeviceInfo:
        try:
            return self.devices[device_id]
        except KeyError:
            raise VerificationError(f"unknown device {device_id}") from None

    def device_by_name(self, name: str) -> DeviceInfo | None:
        for d in self.devices.values():
            if d.live and d.name == name:
                return d
        return None

    def collection(self, name: str) -> CollectionInfo:
        try:
            return self.collections[name]
        except KeyError:
            raise VerificationError(f"no collection {name!r} in the account chain") from None

    def extend(self, entries: Iterable[SignedEntry]) -> ChainState:
        """Verify ``entries`` as the continuation of this chain; return the new state."""
        state = self
        for e in entries:
            state = _apply(state, e)
        return state


def make_entry(
    account_key: SigningKey,
    *,
    account: str,
    seq: int,
    prev: str,
    time: int,
    type: str,
    body: dict[str, Any],
    device_signature: bytes | None = None,
    new_account_key: SigningKey | None = None,
) -> SignedEntry:
    """Build and sign an entry; a ``device-added`` entry carries the device's countersignature
    over its :func:`device_statement` (made on the device, see ``sign_device_statement``);
    an ``account-key-rotated`` entry is signed by the old key and ``new_account_key``."""
    raw = canonical_json(
        {
            "v": CHAIN_VERSION,
            "account": account,
            "seq": seq,
            "prev": prev,
            "time": time,
            "type": type,
            "body": body,
        }
    )
    new_sig = (
        None if new_account_key is None else new_account_key.sign(labels.CHAIN_KEY_ROTATION, raw)
    )
    return SignedEntry(raw, account_key.sign(labels.CHAIN_ENTRY, raw), device_signature, new_sig)


_STATEMENT_FIELDS = ("id", "name", "signing_key", "pre_key", "ssh_key")


def device_statement(account: str, body: Mapping[str, Any]) -> bytes:
    """What a device countersigns: that these keys and this name join this account.

    Role and scopes are the admin's decision and are not part of it."""
    return canonical_json({"account": account, **{k: body.get(k) for k in _STATEMENT_FIELDS}})


def verify_pairing_request(
    account: str, obj: Mapping[str, Any]
) -> tuple[dict[str, Any], bytes, VerifyKey]:
    """Check a joining device's request ``{device, statement_sig}``: the device proves it
    holds its signing key and binds its keys to ``account``. Returns (device, sig, key)."""
    device = obj.get("device")
    if not isinstance(device, dict):
        raise FormatError("pairing request: missing device")
    sig = b64d(obj.get("statement_sig"), size=64, what="statement signature")
    key = VerifyKey(b64d(device.get("signing_key"), size=32, what="signing key"))
    if device.get("id") != device_id_for(key):
        raise VerificationError("pairing request: device id does not match its key")
    key.verify(labels.CHAIN_DEVICE_COUNTERSIGN, device_statement(account, device), sig)
    return {k: device.get(k) for k in _STATEMENT_FIELDS}, sig, key


def recovery_append_message(entries: Iterable[SignedEntry]) -> bytes:
    """What the recovery key signs to append entries without a live admin device."""
    return labels.RECOVERY_APPEND.encode() + b"\x00" + "".join(e.digest for e in entries).encode()


def sign_device_statement(device_key: SigningKey, account: str, body: Mapping[str, Any]) -> bytes:
    return device_key.sign(labels.CHAIN_DEVICE_COUNTERSIGN, device_statement(account, body))


def _parse(raw: bytes) -> dict[str, Any]:
    obj = parse_json_object(raw, what="chain entry")
    if obj.get("v") != CHAIN_VERSION:
        raise UnsupportedVersion(
            f"chain entry of protocol version {obj.get('v')!r}; this Keystead speaks version "
            f"{CHAIN_VERSION} (pre-release: version 1 accounts must be created again)"
        )
    if set(obj) != {"v", "account", "seq", "prev", "time", "type", "body"}:
        raise FormatError("chain entry: unexpected fields")
    if canonical_json(obj) != raw:
        raise FormatError("chain entry is not canonical JSON")
    if not all(type(obj[k]) is int for k in ("seq", "time")):
        raise FormatError("chain entry: seq and time must be integers")
    if not isinstance(obj["body"], dict):
        raise FormatError("chain entry: body must be an object")
    return obj


def _pk(body: Mapping[str, Any], key: str) -> PREPublicKey:
    return PREPublicKey(b64d(body.get(key), size=33, what=key))


def _vk(body: Mapping[str, Any], key: str) -> VerifyKey:
    return VerifyKey(b64d(body.get(key), size=32, what=key))


def _str(body: Mapping[str, Any], key: str) -> str:
    value = body.get(key, "")
    if not isinstance(value, str):
        raise FormatError(f"chain entry: {key} must be a string")
    return value


def _scopes(value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise FormatError("a device needs a non-empty list of scopes")
    return tuple(sorted({check_collection(s) for s in value}))


def verify_chain(
    entries: Iterable[SignedEntry], *, account: str, account_key: VerifyKey | None = None
) -> ChainState:
    """Verify a whole chain from its first entry. ``account_key`` pins the expected key."""
    it = iter(entries)
    first = next(it, None)
    if first is None:
        raise VerificationError("empty chain")
    obj = _parse(first.entry)
    if obj["type"] != "account-created" or obj["seq"] != 0 or obj["prev"] != "":
        raise VerificationError("chain does not start with account-created")
    if obj["account"] != account:
        raise VerificationError("chain is for another account")
    body = obj["body"]
    key = _vk(body, "account_key")
    if account_key is not None and key != account_key:
        raise InvalidSignature("account key does not match the pinned fingerprint")
    key.verify(labels.CHAIN_ENTRY, first.entry, first.signature)
    if first.device_signature is not None or first.new_key_signature is not None:
        raise FormatError("account-created carries only the account signature")
    state = ChainState(
        account=account,
        account_key=key,
        signing_key=key,
        key_generation=0,
        kfrag_signer=_pk(body, "kfrag_signer"),
        recovery_key=_pk(body, "recovery_key"),
        devices={},
        collections={},
        sharing_keys={0: _pk(body, "sharing_key")},
        seq=0,
        head=first.digest,
        created=obj["time"],
        digests=(first.digest,),
    )
    return state.extend(it)


def _apply(state: ChainState, e: SignedEntry) -> ChainState:
    # Always the current generation's key: after a rotation the old key signs nothing more.
    state.signing_key.verify(labels.CHAIN_ENTRY, e.entry, e.signature)
    obj = _parse(e.entry)
    if obj["account"] != state.account:
        raise VerificationError("chain entry is for another account")
    if obj["seq"] != state.seq + 1:
        raise VerificationError(f"chain entry has sequence {obj['seq']}, expected {state.seq + 1}")
    if obj["prev"] != state.head:
        raise VerificationError("chain entry does not link to the previous entry")
    body, kind, seq = obj["body"], obj["type"], obj["seq"]
    devices, collections = dict(state.devices), dict(state.collections)
    sharing = dict(state.sharing_keys)
    if e.new_key_signature is not None and kind != "account-key-rotated":
        raise FormatError("only account-key-rotated entries carry a new key's signature")
    if kind == "account-key-rotated":
        return _rotate_key(state, e, body, seq)
    if kind == "device-added":
        dev_id = body.get("id")
        signing = _vk(body, "signing_key")
        if dev_id != device_id_for(signing) or dev_id in devices:
            raise VerificationError("device id is not fresh or does not match its key")
        if e.device_signature is None:
            raise InvalidSignature("device entry lacks the device's countersignature")
        signing.verify(
            labels.CHAIN_DEVICE_COUNTERSIGN,
            device_statement(state.account, body),
            e.device_signature,
        )
        name = check_name(body.get("name", ""), "device name")
        if any(d.live and d.name == name for d in devices.values()):
            raise VerificationError(f"a live device is already named {name!r}")
        role = body.get("role")
        if role not in ROLES:
            raise FormatError(f"unknown role {role!r}")
        devices[dev_id] = DeviceInfo(
            id=dev_id,
            name=name,
            role=role,
            scopes=_scopes(body.get("scopes")),
            signing_key=signing,
            pre_key=_pk(body, "pre_key"),
            ssh_key=b64d(body.get("ssh_key"), size=32, what="ssh_key"),
            added_seq=seq,
            added_time=obj["time"],
        )
    elif e.device_signature is not None:
        raise FormatError("only device-added entries carry a countersignature")
    elif kind == "device-removed":
        dev = devices.get(_str(body, "id"))
        if dev is None or not dev.live:
            raise VerificationError("removing a device that is not live")
        devices[dev.id] = replace(dev, removed_seq=seq)
    elif kind == "scopes-changed":
        dev = devices.get(_str(body, "id"))
        if dev is None or not dev.live:
            raise VerificationError("changing scopes of a device that is not live")
        devices[dev.id] = replace(dev, scopes=_scopes(body.get("scopes")))
    elif kind == "collection-created":
        name = check_collection(body.get("name", ""))
        if name in collections:
            raise VerificationError(f"collection {name!r} already exists")
        coll_kind = body.get("kind")
        if coll_kind not in KINDS or set(body) != {"name", "kind"}:
            raise FormatError("collection-created: a name and a kind (items or keys)")
        collections[name] = CollectionInfo(name, coll_kind, {})
    elif kind == "epoch":
        coll = collections.get(_str(body, "collection"))
        if coll is None:
            raise VerificationError("epoch for an unknown collection")
        info = _epoch(coll, body, seq)
        collections[coll.name] = replace(coll, epochs={**coll.epochs, info.epoch: info})
    elif kind == "sharing-key":
        gen = body.get("generation")
        if not isinstance(gen, int) or isinstance(gen, bool) or gen != max(sharing) + 1:
            raise VerificationError("sharing key generations must count up by one")
        sharing[gen] = _pk(body, "public_key")
    else:
        raise FormatError(f"unknown chain entry type {kind!r}")
    return replace(
        state,
        devices=devices,
        collections=collections,
        sharing_keys=sharing,
        seq=seq,
        head=e.digest,
        digests=state.digests + (e.digest,),
    )


def _epoch(coll: CollectionInfo, body: Mapping[str, Any], seq: int) -> EpochInfo:
    epoch = body.get("epoch")
    if type(epoch) is not int or epoch != (max(coll.epochs) + 1 if coll.epochs else 1):
        raise VerificationError("epochs must count up by one")
    pk = _pk(body, "public_key")
    if coll.kind == "keys":
        if set(body) != {"collection", "epoch", "public_key"}:
            raise FormatError("an epoch of a keys collection carries only its public key")
        return EpochInfo(epoch, pk, seq)
    want = {"collection", "epoch", "public_key", "capsule", "ciphertext"}
    if epoch > 1:
        want.add("previous")
    if set(body) != want:
        raise FormatError(f"an epoch of an items collection carries {', '.join(sorted(want))}")
    previous = (
        b64d(body["previous"], size=_PREVIOUS_SIZE, what="previous secret") if epoch > 1 else None
    )
    return EpochInfo(
        epoch,
        pk,
        seq,
        b64d(body.get("capsule"), size=CAPSULE_SIZE, what="capsule"),
        b64d(body.get("ciphertext"), size=_DATA_KEY_CT_SIZE, what="epoch key ciphertext"),
        previous,
    )


_PREVIOUS_SIZE = 12 + 32 + 16  # nonce, a 32-byte secret key, tag
_DATA_KEY_CT_SIZE = 32 + 16 + 24  # a 32-byte key under Umbral's DEM (tag, nonce)


def _rotate_key(state: ChainState, e: SignedEntry, body: Mapping[str, Any], seq: int) -> ChainState:
    """A new account key and kfrag signer, signed by the old key (checked by the caller) and
    by the new one, so neither a stolen old key nor a made-up new one rotates alone."""
    if set(body) != {"generation", "account_key", "kfrag_signer"}:
        raise FormatError("account-key-rotated: generation, account_key, kfrag_signer")
    if body.get("generation") != state.key_generation + 1 or type(body["generation"]) is not int:
        raise VerificationError("account key generations must count up by one")
    new = _vk(body, "account_key")
    if e.new_key_signature is None:
        raise InvalidSignature("a key rotation lacks the new key's signature")
    new.verify(labels.CHAIN_KEY_ROTATION, e.entry, e.new_key_signature)
    return replace(
        state,
        signing_key=new,
        key_generation=body["generation"],
        kfrag_signer=_pk(body, "kfrag_signer"),
        seq=seq,
        head=e.digest,
        digests=state.digests + (e.digest,),
    )


def device_id_for(signing_key: VerifyKey) -> str:
    """A device's id: derived from its signing key, so it cannot be reassigned."""
    return hashlib.sha256(signing_key.raw).hexdigest()[:16]


def check_head(state: ChainState, seen_seq: int, seen_head: str) -> None:
    """Refuse a chain that is shorter than, or forks from, the newest one seen."""
    if state.seq < seen_seq:
        raise RollbackDetected(
            f"the service served the chain up to entry {state.seq}, "
            f"but this device has seen entry {seen_seq}"
        )
    if seen_seq >= 0 and seen_head and state.digests[seen_seq] != seen_head:
        raise RollbackDetected("the service served a chain that forks from the one seen before")
