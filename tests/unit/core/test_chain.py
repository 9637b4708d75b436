"""Account chain verification: every way a chain can be wrong is refused, without I/O."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from keystead.core import labels
from keystead.core._encoding import b64d, b64e, canonical_json
from keystead.core._umbral import PRESecretKey
from keystead.core.chain import (
    SignedEntry,
    check_head,
    device_statement,
    make_entry,
    sign_device_statement,
    verify_chain,
)
from keystead.core.crypto import SigningKey
from keystead.core.epochs import new_epoch
from keystead.core.errors import (
    FormatError,
    InvalidSignature,
    RollbackDetected,
    UnsupportedVersion,
    VerificationError,
)
from keystead.core.keys import DeviceKeys

ACCOUNT = "alice"


@dataclass
class Builder:
    """Builds a valid chain entry by entry; tests then break one thing."""

    key: SigningKey = field(default_factory=SigningKey.generate)
    entries: list[SignedEntry] = field(default_factory=list)
    time: int = 1_700_000_000

    def __post_init__(self) -> None:
        if self.entries:
            return
        pre = lambda: b64e(PRESecretKey.generate().public_key.raw)  # noqa: E731
        self.entries.append(
            make_entry(
                self.key,
                account=ACCOUNT,
                seq=0,
                prev="",
                time=self.time,
                type="account-created",
                body={
                    "account_key": b64e(self.key.verify_key.raw),
                    "kfrag_signer": pre(),
                    "recovery_key": pre(),
                    "sharing_key": pre(),
                },
            )
        )

    @property
    def head(self) -> str:
        return self.entries[-1].digest

    def entry(
        self,
        kind: str,
        body: dict[str, Any],
        dsig: bytes | None = None,
        *,
        seq: int | None = None,
        prev: str | None = None,
        key: SigningKey | None = None,
        account: str = ACCOUNT,
    ) -> SignedEntry:
        return make_entry(
            key or self.key,
            account=account,
            seq=len(self.entries) if seq is None else seq,
            prev=self.head if prev is None else prev,
            time=self.time,
            type=kind,
            body=body,
            device_signature=dsig,
        )

    def add(self, kind: str, body: dict[str, Any], dsig: bytes | None = None) -> SignedEntry:
        e = self.entry(kind, body, dsig)
        self.entries.append(e)
        return e

    def device(
        self,
        name: str,
        role: str = "member",
        scopes: list[str] | None = None,
        keys: DeviceKeys | None = None,
    ) -> tuple[DeviceKeys, dict[str, Any], bytes]:
        keys = keys or DeviceKeys.generate()
        body = {**keys.public_body(name), "role": role, "scopes": scopes or ["notes"]}
        return keys, body, sign_device_statement(keys.signing, ACCOUNT, body)

    def add_device(self, name: str, **kw: Any) -> DeviceKeys:
        keys, body, sig = self.device(name, **kw)
        self.add("device-added", body, sig)
        return keys

    def collection(self, name: str, kind: str = "items") -> PRESecretKey:
        """A collection and its first epoch; returns the epoch's secret key."""
        self.add("collection-created", {"name": name, "kind": kind})
        return self.epoch(name, kind, 1, None)

    def epoch(
        self, name: str, kind: str, number: int, previous: PRESecretKey | None
    ) -> PRESecretKey:
        made = new_epoch(ACCOUNT, name, kind, number, previous)
        self.add("epoch", made.body)
        return made.secret

    def rotation(
        self, new: SigningKey, *, generation: int = 1, new_signer: SigningKey | None = None
    ) -> SignedEntry:
        """An ``account-key-rotated`` entry signed by the current key and ``new_signer``
        (default: the new key itself)."""
        body = {
            "generation": generation,
            "account_key": b64e(new.verify_key.raw),
            "kfrag_signer": b64e(PRESecretKey.generate().public_key.raw),
        }
        return make_entry(
            self.key,
            account=ACCOUNT,
            seq=len(self.entries),
            prev=self.head,
            time=self.time,
            type="account-key-rotated",
            body=body,
            new_account_key=new_signer or new,
        )


@pytest.fixture
def chain() -> Builder:
    b = Builder()
    b.collection("notes")
    b.add_device("laptop", role="admin")
    return b


def verify(b: Builder, extra: list[SignedEntry] | None = None) -> Any:
    return verify_chain(b.entries + (extra or []), account=ACCOUNT, account_key=b.key.verify_key)


# ------------------------------------------------------------------ what must pass
def test_valid_chain_verifies_and_describes_the_account(chain: Builder) -> None:
    phone = chain.add_device("phone", scopes=["notes"])
    state = verify(chain)
    assert state.seq == len(chain.entries) - 1
    assert state.head == chain.head
    assert state.digests == tuple(e.digest for e in chain.entries)
    dev = state.devices[phone.device_id]
    assert (dev.name, dev.role, dev.scopes, dev.live) == ("phone", "member", ("notes",), True)
    assert dev.can_read("notes") and not dev.can_read("passwords")
    assert "notes" in state.collections


def test_extend_from_a_state_equals_verifying_from_the_start(chain: Builder) -> None:
    state = verify(chain)
    chain.add_device("phone")
    assert state.extend(chain.entries[-1:]) == verify(chain)


def test_removed_device_is_no_longer_live_and_its_name_can_return(chain: Builder) -> None:
    phone = chain.add_device("phone")
    chain.add("device-removed", {"id": phone.device_id})
    state = verify(chain)
    assert not state.devices[phone.device_id].live
    assert not state.devices[phone.device_id].can_read("notes")
    chain.add_device("phone")  # a new device may reuse the name
    assert len(verify(chain).live_devices) == 2


def test_epochs_count_up_and_sharing_keys_rotate(chain: Builder) -> None:
    first = verify(chain).collections["notes"]
    assert (first.kind, first.current_epoch) == ("items", 1)
    sk1 = PRESecretKey.generate()  # not the epoch's secret: epoch 2 must still count up
    skipped = new_epoch(ACCOUNT, "notes", "items", 3, sk1).body
    with pytest.raises(VerificationError, match="count up"):
        verify(chain, [chain.entry("epoch", skipped)])
    unknown = new_epoch(ACCOUNT, "nope", "items", 1, None).body
    with pytest.raises(VerificationError, match="unknown collection"):
        verify(chain, [chain.entry("epoch", unknown)])
    chain.epoch("notes", "items", 2, sk1)
    notes = verify(chain).collections["notes"]
    assert notes.current_epoch == 2 and notes.public_key != first.public_key
    assert notes.epoch(1) == first.epoch(1)
    pk = b64e(PRESecretKey.generate().public_key.raw)
    with pytest.raises(VerificationError):
        verify(chain, [chain.entry("sharing-key", {"generation": 2, "public_key": pk})])
    chain.add("sharing-key", {"generation": 1, "public_key": pk})
    assert verify(chain).sharing_generation == 1


def test_collection_created_names_a_kind_and_carries_no_key(chain: Builder) -> None:
    pk = b64e(PRESecretKey.generate().public_key.raw)
    for body in (
        {"name": "x"},
        {"name": "x", "kind": "files"},
        {"name": "x", "kind": "items", "public_key": pk},
    ):
        with pytest.raises(FormatError):
            verify(chain, [chain.entry("collection-created", body)])
    with pytest.raises(VerificationError, match="already exists"):
        verify(chain, [chain.entry("collection-created", {"name": "notes", "kind": "keys"})])
    chain.collection("documents/x", kind="keys")
    coll = verify(chain).collections["documents/x"]
    assert coll.kind == "keys" and coll.current.capsule is None


def test_epoch_bodies_are_checked_against_the_collection_kind(chain: Builder) -> None:
    chain.add("collection-created", {"name": "documents/x", "kind": "keys"})
    items_body = new_epoch(ACCOUNT, "documents/x", "items", 1, None).body
    with pytest.raises(FormatError):  # a keys epoch carries only its public key
        verify(chain, [chain.entry("epoch", items_body)])
    sk1 = PRESecretKey.generate()
    second = new_epoch(ACCOUNT, "notes", "items", 2, sk1).body
    no_previous = {k: v for k, v in second.items() if k != "previous"}
    with pytest.raises(FormatError):  # an items epoch after the first wraps the previous
        verify(chain, [chain.entry("epoch", no_previous)])
    with pytest.raises(FormatError):
        verify(chain, [chain.entry("epoch", {**second, "capsule": b64e(bytes(10))})])
    verify(chain, [chain.entry("epoch", second)])


# ------------------------------------------------------------------ attacks refused
def test_bad_signature_is_refused(chain: Builder) -> None:
    e = chain.entry("collection-created", {"name": "x", "kind": "items"})
    forged = SignedEntry(e.entry, bytes(64))
    with pytest.raises(InvalidSignature):
        verify(chain, [forged])
    by_other_key = chain.entry(
        "collection-created", {"name": "x", "kind": "items"}, key=SigningKey.generate()
    )
    with pytest.raises(InvalidSignature):
        verify(chain, [by_other_key])


def test_tampered_entry_bytes_are_refused(chain: Builder) -> None:
    e = chain.entries[-1]
    raw = e.entry.replace(b'"role":"admin"', b'"role":"member"')
    assert raw != e.entry
    with pytest.raises(InvalidSignature):
        verify_chain(
            chain.entries[:-1] + [SignedEntry(raw, e.signature, e.device_signature)],
            account=ACCOUNT,
        )


def test_signature_for_another_purpose_is_refused(chain: Builder) -> None:
    e = chain.entry("device-removed", {"id": "0" * 16})
    other_purpose = chain.key.sign(labels.REQUEST, e.entry)
    with pytest.raises(InvalidSignature):
        verify(chain, [SignedEntry(e.entry, other_purpose)])


def test_wrong_previous_hash_is_refused(chain: Builder) -> None:
    _, body, sig = chain.device("phone")
    with pytest.raises(VerificationError, match="link"):
        verify(chain, [chain.entry("device-added", body, sig, prev="0" * 64)])
    with pytest.raises(VerificationError, match="link"):
        verify(chain, [chain.entry("device-added", body, sig, prev=chain.entries[0].digest)])


def test_reused_sequence_number_is_refused(chain: Builder) -> None:
    _, body, sig = chain.device("phone")
    reused = chain.entry("device-added", body, sig, seq=len(chain.entries) - 1)
    with pytest.raises(VerificationError, match="sequence"):
        verify(chain, [reused])
    skipped = chain.entry("device-added", body, sig, seq=len(chain.entries) + 1)
    with pytest.raises(VerificationError, match="sequence"):
        verify(chain, [skipped])


def test_boolean_sequence_number_is_refused(chain: Builder) -> None:
    b = Builder()
    raw = canonical_json(
        {
            "v": 2,
            "account": ACCOUNT,
            "seq": True,
            "prev": b.head,
            "time": 1,
            "type": "collection-created",
            "body": {"name": "x", "kind": "items"},
        }
    )
    with pytest.raises(FormatError):
        verify_chain(
            [b.entries[0], SignedEntry(raw, b.key.sign(labels.CHAIN_ENTRY, raw))], account=ACCOUNT
        )


def test_device_entry_without_countersignature_is_refused(chain: Builder) -> None:
    _, body, _sig = chain.device("phone")
    with pytest.raises(InvalidSignature):
        verify(chain, [chain.entry("device-added", body)])


def test_device_entry_countersigned_by_another_key_is_refused(chain: Builder) -> None:
    _, body, _ = chain.device("phone")
    other = SigningKey.generate()
    with pytest.raises(InvalidSignature):
        verify(
            chain, [chain.entry("device-added", body, sign_device_statement(other, ACCOUNT, body))]
        )


def test_countersignature_for_another_account_is_refused(chain: Builder) -> None:
    keys, body, _ = chain.device("phone")
    sig = sign_device_statement(keys.signing, "mallory", body)
    with pytest.raises(InvalidSignature):
        verify(chain, [chain.entry("device-added", body, sig)])


def test_device_id_must_match_its_key_and_be_fresh(chain: Builder) -> None:
    keys, body, _ = chain.device("phone")
    body = {**body, "id": "0" * 16}
    sig = keys.signing.sign(labels.CHAIN_DEVICE_COUNTERSIGN, device_statement(ACCOUNT, body))
    with pytest.raises(VerificationError):
        verify(chain, [chain.entry("device-added", body, sig)])
    laptop_id = next(iter(verify(chain).devices))
    state = verify(chain)
    again_keys = DeviceKeys.generate()
    assert state.devices[laptop_id].live and again_keys.device_id != laptop_id


def test_countersignature_on_other_entry_types_is_refused(chain: Builder) -> None:
    with pytest.raises(FormatError):
        verify(
            chain,
            [chain.entry("collection-created", {"name": "x", "kind": "items"}, dsig=bytes(64))],
        )


def test_device_needs_nonempty_scopes_and_a_known_role(chain: Builder) -> None:
    keys = DeviceKeys.generate()
    for role, scopes in [("member", []), ("member", "notes"), ("root", ["notes"])]:
        body = {**keys.public_body("phone"), "role": role, "scopes": scopes}
        sig = sign_device_statement(keys.signing, ACCOUNT, body)
        with pytest.raises(FormatError):
            verify(chain, [chain.entry("device-added", body, sig)])


def test_duplicate_live_device_name_is_refused(chain: Builder) -> None:
    _, body, sig = chain.device("laptop")
    with pytest.raises(VerificationError):
        verify(chain, [chain.entry("device-added", body, sig)])


def test_removing_unknown_or_removed_device_is_refused(chain: Builder) -> None:
    with pytest.raises(VerificationError):
        verify(chain, [chain.entry("device-removed", {"id": "0" * 16})])
    phone = chain.add_device("phone")
    chain.add("device-removed", {"id": phone.device_id})
    with pytest.raises(VerificationError):
        verify(chain, [chain.entry("device-removed", {"id": phone.device_id})])


@pytest.mark.parametrize("body", [{"id": ["x"]}, {"id": {"a": 1}}, {"id": 5}, {}])
def test_malformed_ids_in_entries_are_format_errors_not_crashes(
    chain: Builder, body: dict[str, Any]
) -> None:
    for kind in ("device-removed", "scopes-changed"):
        with pytest.raises((FormatError, VerificationError)):
            verify(chain, [chain.entry(kind, {**body, "scopes": ["notes"]})])
    with pytest.raises((FormatError, VerificationError)):
        verify(chain, [chain.entry("epoch", {"collection": body.get("id"), "epoch": 1})])


def test_chain_must_start_with_account_created_for_this_account(chain: Builder) -> None:
    with pytest.raises(VerificationError):
        verify_chain([], account=ACCOUNT)
    with pytest.raises(VerificationError):
        verify_chain(chain.entries[1:], account=ACCOUNT)
    with pytest.raises(VerificationError):
        verify_chain(chain.entries, account="bob")
    with pytest.raises(InvalidSignature):
        verify_chain(chain.entries, account=ACCOUNT, account_key=SigningKey.generate().verify_key)


def test_entry_for_another_account_is_refused(chain: Builder) -> None:
    with pytest.raises(VerificationError):
        verify(
            chain,
            [chain.entry("collection-created", {"name": "x", "kind": "items"}, account="bob")],
        )


def test_unknown_version_type_and_fields_are_refused(chain: Builder) -> None:
    def signed(obj: dict[str, Any]) -> SignedEntry:
        raw = canonical_json(obj)
        return SignedEntry(raw, chain.key.sign(labels.CHAIN_ENTRY, raw))

    base = {
        "v": 2,
        "account": ACCOUNT,
        "seq": len(chain.entries),
        "prev": chain.head,
        "time": 1,
        "type": "collection-created",
        "body": {"name": "x", "kind": "items"},
    }
    verify(chain, [signed(base)])  # the base itself is valid: each change below breaks it
    for version in (1, 3, "2"):
        with pytest.raises(UnsupportedVersion, match="version 2"):
            verify(chain, [signed({**base, "v": version})])
    with pytest.raises(FormatError):
        verify(chain, [signed({**base, "type": "account-deleted"})])
    with pytest.raises(FormatError):
        verify(chain, [signed({**base, "extra": 1})])
    raw = json.dumps(base, indent=1).encode()  # valid JSON, not canonical
    with pytest.raises(FormatError):
        verify(chain, [SignedEntry(raw, chain.key.sign(labels.CHAIN_ENTRY, raw))])


@pytest.mark.parametrize(
    "obj",
    [
        "x",
        [],
        {"entry": "AA"},
        {"entry": "AA", "sig": "AA"},
        {"entry": "AA==", "sig": b64e(bytes(64))},
        {"entry": "AA", "sig": b64e(bytes(64)), "x": 1},
        {"entry": b64e(bytes(16 * 1024 + 1)), "sig": b64e(bytes(64))},
        {"entry": "AA", "sig": b64e(bytes(64)), "device_sig": "AA"},
    ],
)
def test_signed_entry_json_is_parsed_strictly(obj: Any) -> None:
    with pytest.raises(FormatError):
        SignedEntry.from_json(obj)


def test_signed_entry_json_round_trip(chain: Builder) -> None:
    for e in chain.entries:
        assert SignedEntry.from_json(e.to_json()) == e
    assert b64d(chain.entries[-1].to_json()["device_sig"], size=64)


# ------------------------------------------------------------------ rollback and forks
def test_check_head_accepts_the_same_or_a_longer_chain(chain: Builder) -> None:
    seen = verify(chain)
    check_head(seen, seen.seq, seen.head)
    chain.add_device("phone")
    check_head(verify(chain), seen.seq, seen.head)
    check_head(seen, -1, "")  # nothing seen yet


def test_check_head_refuses_a_shorter_chain(chain: Builder) -> None:
    chain.add_device("phone")
    seen = verify(chain)
    older = verify_chain(chain.entries[:-1], account=ACCOUNT)
    with pytest.raises(RollbackDetected):
        check_head(older, seen.seq, seen.head)


def test_check_head_refuses_a_fork(chain: Builder) -> None:
    fork = Builder(key=chain.key, entries=list(chain.entries))
    chain.add_device("phone")
    fork.add_device("tablet")
    seen = verify(chain)
    forked = verify(fork)
    assert forked.seq == seen.seq
    with pytest.raises(RollbackDetected):
        check_head(forked, seen.seq, seen.head)
    fork.add_device("watch")  # longer, but still not containing what was seen
    with pytest.raises(RollbackDetected):
        check_head(verify(fork), seen.seq, seen.head)


# ------------------------------------------------------------------ account key rotation
def test_rotation_moves_signing_to_the_new_key(chain: Builder) -> None:
    new = SigningKey.generate()
    rotation = chain.rotation(new)
    chain.entries.append(rotation)
    state = verify(chain)
    assert (state.key_generation, state.signing_key) == (1, new.verify_key)
    assert state.account_key == chain.key.verify_key  # the pinned identity stays
    assert state.fingerprint == chain.key.verify_key.fingerprint
    _, body, sig = chain.device("phone")
    chain.entries.append(chain.entry("device-added", body, sig, key=new))
    assert len(verify(chain).live_devices) == 2


def test_entry_signed_by_the_old_key_after_a_rotation_is_refused(chain: Builder) -> None:
    old = chain.key
    new = SigningKey.generate()
    chain.entries.append(chain.rotation(new))
    _, body, sig = chain.device("phone")
    by_old = chain.entry("device-added", body, sig, key=old)
    with pytest.raises(InvalidSignature):
        verify(chain, [by_old])
    verify(chain, [chain.entry("device-added", body, sig, key=new)])  # the same, by the new


def test_rotation_lacking_the_new_keys_signature_is_refused(chain: Builder) -> None:
    new = SigningKey.generate()
    good = chain.rotation(new)
    verify(chain, [good])
    unsigned = SignedEntry(good.entry, good.signature)
    with pytest.raises(InvalidSignature, match="new key"):
        verify(chain, [unsigned])
    # Signed by some key, but not the one it announces.
    wrong = chain.rotation(new, new_signer=SigningKey.generate())
    with pytest.raises(InvalidSignature):
        verify(chain, [wrong])
    # The new key's signature under the wrong purpose.
    other_purpose = new.sign(labels.CHAIN_ENTRY, good.entry)
    with pytest.raises(InvalidSignature):
        verify(chain, [SignedEntry(good.entry, good.signature, None, other_purpose)])


def test_rotation_signed_by_the_new_key_alone_is_refused(chain: Builder) -> None:
    new = SigningKey.generate()
    good = chain.rotation(new)
    by_new_only = SignedEntry(
        good.entry, new.sign(labels.CHAIN_ENTRY, good.entry), None, good.new_key_signature
    )
    with pytest.raises(InvalidSignature):
        verify(chain, [by_new_only])


def test_rotation_generations_count_up_and_bodies_are_strict(chain: Builder) -> None:
    new = SigningKey.generate()
    for gen in (0, 2, True):
        with pytest.raises(VerificationError, match="generation"):
            verify(chain, [chain.rotation(new, generation=gen)])
    good = chain.rotation(new)
    body = json.loads(good.entry)["body"]
    extra = make_entry(
        chain.key,
        account=ACCOUNT,
        seq=len(chain.entries),
        prev=chain.head,
        time=chain.time,
        type="account-key-rotated",
        body={**body, "x": 1},
        new_account_key=new,
    )
    with pytest.raises(FormatError):
        verify(chain, [extra])


def test_new_key_signature_on_other_entry_types_is_refused(chain: Builder) -> None:
    e = chain.entry("collection-created", {"name": "x", "kind": "items"})
    verify(chain, [e])
    with pytest.raises(FormatError):
        verify(
            chain,
            [
                SignedEntry(
                    e.entry,
                    e.signature,
                    None,
                    SigningKey.generate().sign(labels.CHAIN_KEY_ROTATION, e.entry),
                )
            ],
        )
