"""The wired ssh adapter's pure parts: the signed published list, item formats, the confirm hook."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from keystead.adapters.ssh import _agent_protocol as proto
from keystead.adapters.ssh._agent_core import AgentCore, Session, SignContext
from keystead.adapters.ssh._confirm import confirm_hook, describe
from keystead.adapters.ssh._items import (
    decode_host,
    decode_key,
    encode_host,
    encode_key,
    host_item_id,
    key_item_id,
)
from keystead.adapters.ssh._keys import generate_device_key
from keystead.adapters.ssh._known_hosts import parse_known_hosts
from keystead.adapters.ssh._published import (
    MAX_KEYS,
    OLD_FORMAT,
    PURPOSE_PUBLISHED,
    OlderAccountKey,
    published_seq,
    sign_published,
    verify_published,
)
from keystead.core import (
    FormatError,
    InvalidSignature,
    SigningKey,
    UnsupportedVersion,
    b64d,
    b64e,
    canonical_json,
)
from keystead.core.envelope import SignedEnvelope

ACCOUNT_KEY = SigningKey(bytes(range(32)))


def test_published_round_trip_and_order() -> None:
    keys = [generate_device_key(f"k{i}").public for i in range(3)]
    pub = sign_published(ACCOUNT_KEY, 0, "alice", 7, 1_700_000_000, keys)
    again = verify_published(ACCOUNT_KEY.verify_key, 0, pub.to_json(), account="alice")
    assert again.seq == 7 and set(again.keys) == set(keys)
    assert [k.line() for k in again.keys] == sorted(k.line() for k in keys)
    # On the wire: the core's signed envelope, signer naming the account-key generation,
    # body the canonical version 2 document.
    wire = pub.to_json()
    assert set(wire) == {"v", "purpose", "signer", "body", "sig"}
    assert (wire["v"], wire["purpose"], wire["signer"]) == (
        1,
        "keystead/v2/ssh/published-keys",
        "account-key/0",
    )
    body = json.loads(b64d(wire["body"]))
    assert body["v"] == 2 and body["seq"] == 7 and canonical_json(body) == b64d(wire["body"])
    assert published_seq(wire) == 7


def _resign(
    body: dict[str, object], key: SigningKey = ACCOUNT_KEY, signer: str = "account-key/0"
) -> dict[str, object]:
    return _wire(
        SignedEnvelope.sign(
            key, purpose=PURPOSE_PUBLISHED, signer=signer, body=canonical_json(body)
        ).to_bytes()
    )


def _wire(raw: bytes) -> dict[str, object]:
    obj: dict[str, object] = json.loads(raw)
    return obj


BODY: dict[str, object] = {"v": 2, "account": "alice", "seq": 1, "time": 1, "keys": []}


@pytest.mark.parametrize(
    "change, error",
    [
        ({"v": 1}, UnsupportedVersion),
        ({"v": 3}, UnsupportedVersion),
        ({"account": "mallory"}, FormatError),
        ({"seq": 0}, FormatError),
        ({"seq": True}, FormatError),
        ({"keys": "ssh-ed25519 AAAA"}, FormatError),
        ({"keys": ["ssh-ed25519 !!!"]}, FormatError),
        ({"extra": 1}, FormatError),
    ],
)
def test_published_rejects_bad_documents(change: dict[str, object], error: type) -> None:
    with pytest.raises(error):
        verify_published(ACCOUNT_KEY.verify_key, 0, _resign({**BODY, **change}), account="alice")


def test_published_body_must_be_canonical_and_within_the_size_cap() -> None:
    loose = json.dumps(BODY, indent=1).encode()
    env = SignedEnvelope.sign(
        ACCOUNT_KEY, purpose=PURPOSE_PUBLISHED, signer="account-key/0", body=loose
    )
    with pytest.raises(FormatError, match="canonical"):
        verify_published(ACCOUNT_KEY.verify_key, 0, _wire(env.to_bytes()), account="alice")
    big = {**BODY, "keys": ["x" * 300_000]}
    with pytest.raises(FormatError, match="too large"):
        verify_published(ACCOUNT_KEY.verify_key, 0, _resign(big), account="alice")
    too_many = [generate_device_key(f"k{i}").public for i in range(MAX_KEYS + 1)]
    with pytest.raises(FormatError, match="at most"):
        sign_published(ACCOUNT_KEY, 0, "alice", 1, 1, too_many)


def test_published_signature_is_bound_to_the_account_key_purpose_and_generation() -> None:
    pub = sign_published(ACCOUNT_KEY, 1, "alice", 1, 1, []).to_json()
    other = SigningKey(bytes(32))
    with pytest.raises(InvalidSignature):
        verify_published(other.verify_key, 1, pub, account="alice")
    body = b64d(str(pub["body"]))
    wrong_purpose = _wire(
        SignedEnvelope.sign(
            ACCOUNT_KEY, purpose="keystead/v2/other", signer="account-key/1", body=body
        ).to_bytes()
    )
    with pytest.raises(FormatError, match="expected"):
        verify_published(ACCOUNT_KEY.verify_key, 1, wrong_purpose, account="alice")
    tampered = {**pub, "body": b64e(body.replace(b'"seq":1', b'"seq":2'))}
    with pytest.raises(InvalidSignature):
        verify_published(ACCOUNT_KEY.verify_key, 1, tampered, account="alice")
    relabelled = {**pub, "signer": "account-key/2"}  # the signer is signed too
    with pytest.raises(InvalidSignature):
        verify_published(ACCOUNT_KEY.verify_key, 2, relabelled, account="alice")
    with pytest.raises(FormatError):
        verify_published(ACCOUNT_KEY.verify_key, 1, {**pub, "x": "y"}, account="alice")
    with pytest.raises(FormatError, match="signer"):
        verify_published(ACCOUNT_KEY.verify_key, 1, _resign(BODY, signer="alice"), account="alice")


def test_a_list_signed_by_a_rotated_account_key_is_refused_as_older() -> None:
    """After an admin removal (generation 0 -> 1) the removed admin still holds the old key:
    what it signs, even naming the new generation, never verifies."""
    old = sign_published(ACCOUNT_KEY, 0, "alice", 5, 1, []).to_json()
    new_key = SigningKey(bytes(range(1, 33)))
    with pytest.raises(OlderAccountKey):
        verify_published(new_key.verify_key, 1, old, account="alice")
    forged = _resign({**BODY, "seq": 6}, signer="account-key/1")  # old key, new label
    with pytest.raises(InvalidSignature) as e:
        verify_published(new_key.verify_key, 1, forged, account="alice")
    assert not isinstance(e.value, OlderAccountKey)
    ahead = _resign(BODY, key=new_key, signer="account-key/2")
    with pytest.raises(InvalidSignature):
        verify_published(new_key.verify_key, 1, ahead, account="alice")
    # its seq is still read, unverified, so the next publication counts on from it
    assert published_seq(old) == 5


def test_a_version_1_list_is_refused_with_a_hint_but_its_seq_still_counts() -> None:
    doc = canonical_json({"v": 1, "account": "alice", "seq": 9, "time": 1, "keys": []})
    v1 = {"doc": b64e(doc), "sig": b64e(ACCOUNT_KEY.sign("keystead/v1/ssh/published-keys", doc))}
    with pytest.raises(UnsupportedVersion) as e:
        verify_published(ACCOUNT_KEY.verify_key, 0, v1, account="alice")
    assert str(e.value) == OLD_FORMAT and "\n" not in OLD_FORMAT
    assert "keystead ssh publish" in OLD_FORMAT
    assert published_seq(v1) == 9


def test_key_item_round_trip_and_id_binding() -> None:
    key = generate_device_key("imported")
    item_id = key_item_id(key)
    loaded = decode_key(item_id, encode_key(key))
    assert loaded.key == key and loaded.key.comment == "imported"
    with pytest.raises(FormatError):
        decode_key(key_item_id(generate_device_key("x")), encode_key(key))
    bad = json.loads(encode_key(key))
    bad["v"] = 9
    with pytest.raises(UnsupportedVersion):
        decode_key(item_id, canonical_json(bad))


def test_host_item_round_trip() -> None:
    key = generate_device_key("h").public
    (entry,) = parse_known_hosts(f"example.org,[example.org]:2222  {key.line()}\n")
    item_id = host_item_id(entry.line)
    assert decode_host(item_id, encode_host(entry)).matches("[example.org]:2222")
    with pytest.raises(FormatError):
        decode_host(host_item_id("other"), encode_host(entry))


def _context(user: str | None, host: bool) -> SignContext:
    key = generate_device_key("keystead:alice:laptop").public
    host_key = generate_device_key("host").public if host else None
    return SignContext(key, b"data", 0, user, host_key, False, None)


def test_describe_names_user_host_and_key() -> None:
    ctx = _context("root", True)
    assert ctx.host_key is not None
    text = describe(ctx, lambda blob: ["[db.example]:2222"] if blob == ctx.host_key.blob else [])
    assert "'root'" in text and "[db.example]:2222" in text and ctx.host_key.fingerprint in text
    assert "keystead:alice:laptop" in text
    assert "unverified host" in describe(_context("root", False), lambda _: [])


class RecordingApprover:
    """A fake phone: answers from a script, remembers what it was shown."""

    def __init__(self, answers: list[bool]) -> None:
        self.answers = answers
        self.shown: list[str] = []

    def __call__(self, message: str) -> bool:
        self.shown.append(message)
        return self.answers.pop(0)


def test_each_signature_asks_once_and_a_denial_fails() -> None:
    key = generate_device_key("dev")
    approver = RecordingApprover([True, False, True])
    core = AgentCore(lambda: [key], confirm=confirm_hook(approver, lambda _: []))
    request = proto.encode_sign_request(key.public_blob, b"x")[4:]
    answers = [core.handle(request, Session())[4] for _ in range(3)]
    assert answers == [
        proto.SSH_AGENT_SIGN_RESPONSE,
        proto.SSH_AGENT_FAILURE,
        proto.SSH_AGENT_SIGN_RESPONSE,
    ]
    assert len(approver.shown) == 3  # one approval per signature, never remembered


def test_adapter_import_is_light() -> None:
    code = (
        "import sys, keystead.adapters.ssh as s\n"
        "assert s.adapter.name == 'ssh' and s.adapter.collections == ('ssh',)\n"
        "heavy = [m for m in ('click', 'cryptography', 'httpx', 'fastapi', 'keystead.core.device')"
        " if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
