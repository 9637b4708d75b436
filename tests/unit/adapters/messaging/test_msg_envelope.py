"""The envelope format without a service: signing, strict parsing, every way it is refused."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from keystead.adapters.messaging import adapter
from keystead.adapters.messaging._envelope import (
    Group,
    body_ad,
    make_envelope,
    new_message_id,
    open_body,
    parse_address,
    parse_wire,
    seal_body,
    verify_envelope,
)
from keystead.core import (
    Adapter,
    DecryptionFailed,
    FormatError,
    InvalidSignature,
    SigningKey,
    UnsupportedVersion,
    b64d,
    b64e,
    canonical_json,
    random_bytes,
)

ALICE, BOB = "alice@svc.test:8470", "bob@svc.test:8470"
DEVICE = "0123456789abcdef"


def _message(
    key: SigningKey | None = None, *, to: str = BOB, group: Group | None = None, text: str = "hello"
) -> tuple[bytes, bytes, SigningKey]:
    signer = SigningKey.generate()
    mk, mid = random_bytes(32), new_message_id()
    body = seal_body(mk, text, body_ad(mid, ALICE, DEVICE, 1_700_000_000, group))
    wire = make_envelope(
        key or signer,
        message_id=mid,
        sender=ALICE,
        device=DEVICE,
        to=to,
        time=1_700_000_000,
        group=group,
        sealed_key=b"k" * 180,
        body=body,
    )
    return wire, mk, signer


def _rewrap(wire: bytes, **changes: object) -> bytes:
    obj = json.loads(wire)
    obj.update(changes)
    return canonical_json(obj)


def test_adapter_object() -> None:
    assert isinstance(adapter, Adapter)
    assert (adapter.name, adapter.collections, adapter.commands) == (
        "messaging",
        ("messages",),
        ("msg",),
    )
    assert set(adapter.cli_groups()) == {"msg"}


def test_importing_the_adapter_stays_light() -> None:
    code = (
        "import sys; import keystead.adapters.messaging as a; "
        "print([m for m in ('httpx', 'fastapi', 'umbral_pre', "
        "'keystead.adapters.messaging._inbox') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_round_trip() -> None:
    wire, mk, signer = _message()
    env = verify_envelope(parse_wire(wire), signer.verify_key)
    assert (env.sender, env.device, env.to, env.time, env.group) == (
        ALICE,
        DEVICE,
        BOB,
        1_700_000_000,
        None,
    )
    assert open_body(mk, env.body, env.ad) == "hello"


GID = "0f" * 16


def test_group_round_trip_and_shared_ciphertext() -> None:
    g = Group("carol@svc.test:8470", GID)
    assert g.key == f"messages/group/{GID}" and str(g) == f"{GID}@carol@svc.test:8470"
    wire, mk, signer = _message(group=g)
    env = verify_envelope(parse_wire(wire), signer.verify_key)
    assert env.group == g
    assert open_body(mk, env.body, env.ad) == "hello"


def test_forged_signature_is_refused() -> None:
    wire, _, _ = _message()
    with pytest.raises(InvalidSignature):
        verify_envelope(parse_wire(wire), SigningKey.generate().verify_key)


def test_the_wire_is_a_core_signed_envelope_and_names_no_group() -> None:
    from keystead.core.envelope import SignedEnvelope

    wire, _, signer = _message(group=Group("carol@svc.test:8470", GID))
    outer = json.loads(wire)
    assert set(outer) == {"v", "purpose", "signer", "body", "sig"}
    assert (outer["v"], outer["purpose"], outer["signer"]) == (
        1,
        "keystead/v2/messaging/envelope",
        f"{ALICE}/{DEVICE}",
    )
    inner = json.loads(
        SignedEnvelope.from_bytes(wire, purpose=outer["purpose"]).verify(signer.verify_key)
    )
    assert inner["v"] == 2 and inner["group"] == {"owner": "carol@svc.test:8470", "id": GID}


def test_a_format_1_message_is_refused_with_a_clear_line() -> None:
    """What a Keystead before protocol v2 sent: its own wrapper, groups by name."""
    from keystead.adapters.messaging._envelope import OLD_FORMAT

    signer = SigningKey.generate()
    raw = canonical_json(
        {
            "v": 1,
            "id": new_message_id(),
            "from": ALICE,
            "device": DEVICE,
            "to": BOB,
            "time": 1,
            "group": {"owner": ALICE, "name": "team"},
            "key": "",
            "body": "",
        }
    )
    old = canonical_json(
        {
            "v": 1,
            "from": ALICE,
            "device": DEVICE,
            "envelope": b64e(raw),
            "sig": b64e(signer.sign("keystead/v1/messaging/envelope", raw)),
        }
    )
    with pytest.raises(UnsupportedVersion) as err:
        parse_wire(old)
    assert str(err.value) == OLD_FORMAT and "format 1" in OLD_FORMAT


@pytest.mark.parametrize("field", ["body", "key", "to", "time", "id"])
def test_any_altered_field_breaks_the_signature(field: str) -> None:
    wire, _, signer = _message()
    outer = json.loads(wire)
    env = json.loads(b64d(outer["body"]))
    env[field] = {
        "body": b64e(b"x" * 40),
        "key": b64e(b"y" * 180),
        "to": "eve@svc.test:8470",
        "time": 1,
        "id": new_message_id(),
    }[field]
    forged = _rewrap(wire, body=b64e(canonical_json(env)))
    with pytest.raises(InvalidSignature):
        verify_envelope(parse_wire(forged), signer.verify_key)


def test_relabelled_sender_is_refused() -> None:
    """The signer names the key; a valid signature under another signer is refused, and so
    is an envelope whose inside names another device than its signer."""
    wire, _, signer = _message()
    relabelled = _rewrap(wire, signer=f"{ALICE}/fedcba9876543210")
    with pytest.raises(InvalidSignature):
        verify_envelope(parse_wire(relabelled), signer.verify_key)
    from keystead.adapters.messaging import _labels
    from keystead.core.envelope import SignedEnvelope

    inner = SignedEnvelope.from_bytes(wire, purpose=_labels.ENVELOPE).verify(signer.verify_key)
    resigned = SignedEnvelope.sign(
        signer, purpose=_labels.ENVELOPE, signer=f"{ALICE}/fedcba9876543210", body=inner
    ).to_bytes()
    with pytest.raises(InvalidSignature):
        verify_envelope(parse_wire(resigned), signer.verify_key)


def test_truncated_and_malformed_wire() -> None:
    wire, _, _ = _message()
    for bad in (wire[:-10], wire[: len(wire) // 2], b"", b"[]", b"not json"):
        with pytest.raises(FormatError):
            parse_wire(bad)
    with pytest.raises(UnsupportedVersion):
        parse_wire(_rewrap(wire, v=2))
    with pytest.raises(FormatError):  # signed for another purpose
        parse_wire(_rewrap(wire, purpose="keystead/v2/ssh/published"))
    with pytest.raises(FormatError):
        parse_wire(_rewrap(wire, extra=1))
    with pytest.raises(FormatError):
        parse_wire(_rewrap(wire, sig=b64e(b"s" * 63)))


def test_truncated_or_altered_body_does_not_open() -> None:
    wire, mk, signer = _message()
    env = verify_envelope(parse_wire(wire), signer.verify_key)
    for body in (env.body[:-1], env.body[:20], env.body[:-1] + bytes([env.body[-1] ^ 1])):
        with pytest.raises(DecryptionFailed):
            open_body(mk, body, env.ad)
    with pytest.raises(DecryptionFailed):  # moved under another header
        open_body(mk, env.body, body_ad(env.id, "eve@svc.test:8470", DEVICE, env.time, None))


def test_signed_but_unknown_version_inside() -> None:
    signer = SigningKey.generate()
    raw = canonical_json(
        {
            "v": 3,
            "id": new_message_id(),
            "from": ALICE,
            "device": DEVICE,
            "to": BOB,
            "time": 1,
            "group": None,
            "key": "",
            "body": "",
        }
    )
    from keystead.adapters.messaging import _labels
    from keystead.core.envelope import SignedEnvelope

    wire = SignedEnvelope.sign(
        signer, purpose=_labels.ENVELOPE, signer=f"{ALICE}/{DEVICE}", body=raw
    ).to_bytes()
    with pytest.raises(UnsupportedVersion):
        verify_envelope(parse_wire(wire), signer.verify_key)


def test_addresses() -> None:
    assert parse_address("bob") == ("bob", None)
    assert parse_address("bob@127.0.0.1:8470") == ("bob", "127.0.0.1:8470")
    for bad in ("", "Bob", "bob@", "bob@host/x", "@host", "bob@ho st"):
        with pytest.raises(FormatError):
            parse_address(bad)
    with pytest.raises(FormatError):
        Group("carol", "team")  # the owner is a full address
    with pytest.raises(FormatError):
        Group("carol@h", "team")  # a group is named by its opaque id on the wire
    with pytest.raises(FormatError):
        Group("carol@h", "0F" * 16)
