"""Known-answer vectors (tests/vectors/core): the library makes and reads exactly these bytes.

The vectors were built from docs/PROTOCOL.md with ``cryptography`` and ``umbral_pre`` alone
(``generate.py``); here the library recomputes every deterministic part (canonical entry
bytes, Ed25519 signatures, associated data, messages, digests) and opens or verifies every
randomized one (Umbral capsules, kfrags, AEAD ciphertexts, the recovery signature).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from keystead.core import _umbral, labels
from keystead.core._encoding import b64d, canonical_json
from keystead.core.bundle import bundle_digest
from keystead.core.chain import (
    SignedEntry,
    device_id_for,
    device_statement,
    make_entry,
    verify_chain,
)
from keystead.core.crypto import SigningKey, VerifyKey, open_sealed
from keystead.core.epochs import data_key, previous_secret, walk_back
from keystead.core.errors import DecryptionFailed, InvalidSignature
from keystead.core.items import ItemVerifier, SealedItem, item_message, open_item, sign_items
from keystead.core.keys import AccountSecrets
from keystead.core.keystore import Keystore
from keystead.core.requests import request_message
from keystead.core.sealed import SealedKey

VECTORS = Path(__file__).resolve().parents[2] / "vectors" / "core" / "vectors.json"
V: dict[str, Any] = json.loads(VECTORS.read_text())
K = {name: bytes.fromhex(value) for name, value in V["keys"].items()}
h = bytes.fromhex


def signed(e: dict[str, Any]) -> SignedEntry:
    return SignedEntry(
        h(e["entry"]),
        h(e["sig"]),
        h(e["device_sig"]) if "device_sig" in e else None,
        h(e["new_key_sig"]) if "new_key_sig" in e else None,
    )


def chain_state() -> Any:
    return verify_chain(
        [signed(e) for e in V["chain"]],
        account=V["account"],
        account_key=SigningKey(K["account_key_seed"]).verify_key,
    )


def test_device_id_is_the_first_16_hex_of_the_signing_key_hash() -> None:
    assert device_id_for(SigningKey(K["device_signing_seed"]).verify_key) == V["device_id"]
    assert device_id_for(SigningKey(K["laptop_signing_seed"]).verify_key) == V["laptop_id"]


@pytest.mark.parametrize("index", range(len(V["chain"])), ids=lambda i: V["chain"][i]["type"])
def test_chain_entry_bytes_and_signatures(index: int) -> None:
    e = V["chain"][index]
    rotated = any(x["type"] == "account-key-rotated" for x in V["chain"][:index])
    key = SigningKey(K["new_account_key_seed" if rotated else "account_key_seed"])
    new_key = SigningKey(K["new_account_key_seed"]) if "new_key_sig" in e else None
    dsig = h(e["device_sig"]) if "device_sig" in e else None
    made = make_entry(
        key,
        account=V["account"],
        seq=e["seq"],
        prev=e["prev"],
        time=e["time"],
        type=e["type"],
        body=e["body"],
        device_signature=dsig,
        new_account_key=new_key,
    )
    assert made.entry.hex() == e["entry"]
    assert made.digest == e["digest"] == hashlib.sha256(made.entry).hexdigest()
    assert made.signature.hex() == e["sig"]
    assert made == signed(e)
    if new_key is not None:
        assert made.new_key_signature is not None
        assert made.new_key_signature.hex() == e["new_key_sig"]


def test_whole_chain_verifies_and_follows_the_key_rotation() -> None:
    state = chain_state()
    assert state.seq == len(V["chain"]) - 1 and state.head == V["chain"][-1]["digest"]
    assert state.key_generation == 1
    assert state.signing_key == SigningKey(K["new_account_key_seed"]).verify_key
    assert state.kfrag_signer == _umbral.PRESecretKey(K["new_kfrag_signer"]).public_key
    assert not state.devices[V["device_id"]].live and state.devices[V["laptop_id"]].live
    assert state.sharing_generation == 1


def test_the_old_key_signs_nothing_after_the_rotation() -> None:
    last = V["chain"][-1]
    forged = make_entry(
        SigningKey(K["account_key_seed"]),
        account=V["account"],
        seq=last["seq"],
        prev=last["prev"],
        time=last["time"],
        type=last["type"],
        body=last["body"],
    )
    entries = [signed(e) for e in V["chain"][:-1]] + [forged]
    with pytest.raises(InvalidSignature):
        verify_chain(entries, account=V["account"])


def test_rotation_needs_the_new_keys_signature() -> None:
    i = next(i for i, e in enumerate(V["chain"]) if e["type"] == "account-key-rotated")
    entries = [signed(e) for e in V["chain"][: i + 1]]
    entries[-1] = replace(entries[-1], new_key_signature=bytes(64))
    with pytest.raises(InvalidSignature):
        verify_chain(entries, account=V["account"])


def test_device_countersignature_statement() -> None:
    added = next(
        e for e in V["chain"] if e["type"] == "device-added" and e["body"]["name"] == "phone"
    )
    statement = device_statement(V["account"], added["body"])
    assert statement.hex() == V["device_statement"]
    SigningKey(K["device_signing_seed"]).verify_key.verify(
        labels.CHAIN_DEVICE_COUNTERSIGN, statement, h(added["device_sig"])
    )


def test_epoch_data_keys_and_walking_back() -> None:
    coll = chain_state().collection("passwords")
    sk1, sk2 = (_umbral.PRESecretKey(K[f"epoch_{e}_secret"]) for e in (1, 2))
    assert data_key(sk1, coll.epoch(1)) == K["epoch_1_data_key"]
    assert data_key(sk2, coll.epoch(2)) == K["epoch_2_data_key"]
    assert (
        previous_secret(V["account"], coll, 2, K["epoch_2_data_key"]).to_bytes()
        == K["epoch_1_secret"]
    )
    assert walk_back(V["account"], coll, 2, K["epoch_2_data_key"], {1, 2}) == {
        1: K["epoch_1_data_key"],
        2: K["epoch_2_data_key"],
    }


def test_previous_wrapping_associated_data() -> None:
    p = V["previous"]
    ad = b"\x00".join(
        (
            labels.EPOCH_PREVIOUS,
            p["account"].encode(),
            p["collection"].encode(),
            p["epoch"].to_bytes(8, "big"),
        )
    )
    assert ad.hex() == p["ad"]
    assert open_sealed(K["epoch_2_data_key"], h(p["sealed"]), ad).hex() == p["plaintext"]
    coll = chain_state().collection("passwords")
    assert coll.epoch(2).previous == h(p["sealed"])
    with pytest.raises(DecryptionFailed):  # the AD binds the epoch number
        open_sealed(K["epoch_2_data_key"], h(p["sealed"]), ad[:-1] + b"\x03")


def item_from(
    v: dict[str, Any], ciphertext: bytes, sig: bytes = b"", proof: bytes = b""
) -> SealedItem:
    return SealedItem(
        v["id"], v["version"], v["epoch"], ciphertext, v["deleted"], 0, v["writer"], sig, proof
    )


def test_item_associated_data_message_and_signature() -> None:
    v = V["item"]
    item = item_from(v, h(v["ciphertext"]))
    message = item_message(v["account"], v["collection"], item)
    assert message.hex() == v["message"]
    assert message == h(v["ad"]) + b"\x00" + hashlib.sha256(item.ciphertext).digest()
    assert hashlib.sha256(b"\x00" + message).hexdigest() == v["leaf"]
    signer = SigningKey(K["laptop_signing_seed"])
    [signed_item] = sign_items(
        signer, account=v["account"], collection=v["collection"], items=[item]
    )
    assert (signed_item.signature.hex(), signed_item.proof.hex()) == (v["sig"], v["proof"])
    ItemVerifier().verify(
        signed_item, signer.verify_key, account=v["account"], collection=v["collection"]
    )
    assert open_item(
        K["epoch_2_data_key"], account=v["account"], collection=v["collection"], item=item
    ) == h(v["plaintext"])
    assert open_sealed(K["epoch_2_data_key"], item.ciphertext, h(v["ad"])) == h(v["plaintext"])


def test_one_write_is_one_signature_over_a_merkle_root() -> None:
    g = V["item_group"]
    items = [item_from(i, h(i["ciphertext"])) for i in g["items"]]
    signer = SigningKey(K["laptop_signing_seed"])
    signed = sign_items(signer, account=g["account"], collection=g["collection"], items=items)
    assert [(i.signature.hex(), i.proof.hex()) for i in signed] == [
        (g["sig"], i["proof"]) for i in g["items"]
    ]
    signer.verify_key.verify(labels.ITEM_SIGNATURE, h(g["root"]), h(g["sig"]))
    verifier = ItemVerifier()
    for item, v in zip(signed, g["items"], strict=True):
        verifier.verify(item, signer.verify_key, account=g["account"], collection=g["collection"])
        assert open_item(
            K["epoch_2_data_key"], account=g["account"], collection=g["collection"], item=item
        ) == h(v["plaintext"])
    moved = replace(signed[0], proof=signed[1].proof)  # another item's path: refused
    with pytest.raises(InvalidSignature):
        ItemVerifier().verify(
            moved, signer.verify_key, account=g["account"], collection=g["collection"]
        )


def test_deletion_associated_data() -> None:
    v, d = V["item"], V["deletion"]
    item = item_from(d, b"\x00" * 28)
    message = item_message(v["account"], v["collection"], item)
    assert message[:-33].hex() == d["ad"]


def test_item_wire_form_round_trips() -> None:
    wire = {k: v for k, v in V["bundle"]["body"]["items"][0].items() if k != "collection"}
    item = SealedItem.from_json(wire)
    assert item.to_json() == wire
    assert item.ciphertext.hex() == V["item"]["ciphertext"]


def test_sealed_key_record_bytes_and_opening() -> None:
    v = V["sealed_key"]
    rec = SealedKey.from_bytes(h(v["bytes"]))
    assert (rec.owner, rec.key, rec.epoch) == (v["owner"], v["key"], v["epoch"])
    assert rec.to_bytes().hex() == v["bytes"]
    assert canonical_json(json.loads(h(v["bytes"]))) == h(v["bytes"])
    sk = _umbral.PRESecretKey(K["epoch_2_secret"])
    assert _umbral.decrypt(sk, rec.capsule, rec.ciphertext).hex() == v["plaintext"]


def test_kfrag_and_reencryption_open_the_epoch_data_key() -> None:
    r = V["randomized"]
    kfrag = h(r["epoch_2_kfrag_to_laptop"])
    signer = _umbral.PRESecretKey(K["new_kfrag_signer"]).public_key  # signed after rotating
    delegating = _umbral.PRESecretKey(K["epoch_2_secret"]).public_key
    device = _umbral.PRESecretKey(K["laptop_pre"])
    _umbral.verify_kfrag(kfrag, signer=signer, delegating=delegating, receiving=device.public_key)
    capsule = h(r["epoch_2_capsule"])
    cfrag = _umbral.reencrypt(capsule, kfrag)
    _umbral.verify_cfrag(
        cfrag, capsule=capsule, signer=signer, delegating=delegating, receiving=device.public_key
    )
    assert (
        _umbral.decrypt_reencrypted(
            device, delegating, capsule, [cfrag], h(r["epoch_2_ciphertext"])
        )
        == K["epoch_2_data_key"]
    )


def test_bundle_digest_and_recovery_signature() -> None:
    b = V["bundle"]
    digest = bundle_digest(b["body"])
    assert digest.hex() == b["digest"]
    assert bundle_digest({**b["body"], "recovery_sig": "ignored"}) == digest
    recovery = _umbral.PRESecretKey(K["recovery_key"]).public_key
    _umbral.verify(recovery, digest, h(b["recovery_sig"]))
    with pytest.raises(InvalidSignature):
        _umbral.verify(recovery, bundle_digest({**b["body"], "grants": []}), h(b["recovery_sig"]))


def test_removal_bundle_extends_the_chain_at_its_base() -> None:
    body = V["bundle"]["body"]
    base = body["base"]["seq"]
    before = verify_chain([signed(e) for e in V["chain"][: base + 1]], account=V["account"])
    assert before.head == body["base"]["head"]
    after = before.extend([SignedEntry.from_json(e) for e in body["entries"]])
    assert after.head == V["chain"][-1]["digest"] and after.key_generation == 1
    [item] = [
        SealedItem.from_json({k: v for k, v in i.items() if k != "collection"})
        for i in body["items"]
    ]
    ItemVerifier().verify(
        item,
        after.devices[V["laptop_id"]].signing_key,
        account=V["account"],
        collection="passwords",
    )


def test_recovery_blob_holds_the_new_account_secrets() -> None:
    blob = b64d(V["bundle"]["body"]["recovery_blob"])
    recovery = _umbral.PRESecretKey(K["recovery_key"])
    plain = _umbral.decrypt(recovery, blob[:105], blob[105:])
    assert plain.hex() == V["account_secrets"]
    secrets = AccountSecrets.from_bytes(plain)
    assert secrets.to_bytes() == plain
    assert secrets.account_key.verify_key == chain_state().signing_key
    assert secrets.kfrag_signer.public_key == chain_state().kfrag_signer
    assert secrets.sharing[1].public_key == chain_state().sharing_key


def test_request_signing_message() -> None:
    r = V["request"]
    msg = request_message(
        r["method"],
        r["origin"],
        r["path"],
        r["digest"],
        r["time"],
        r["nonce"],
        r["account"],
        r["device"],
    )
    assert msg.hex() == r["message"]
    key = SigningKey(K["laptop_signing_seed"])
    assert key.sign(labels.REQUEST, msg).hex() == r["sig"]
    VerifyKey(key.verify_key.raw).verify(labels.REQUEST, msg, h(r["sig"]))


def test_keystore_opens_with_the_passphrase(tmp_path: Path) -> None:
    v = V["keystore"]
    path = tmp_path / "keystore.json"
    path.write_text(json.dumps(v["file"]))
    store = Keystore.open(path, v["passphrase"])
    assert store.key.hex() == v["key"]
    assert store.data == json.loads(h(v["contents"]))


def test_label_and_group_collections_are_opaque_and_the_name_record_names_them() -> None:
    from keystead.core.names import Names, is_opaque

    v = V["names"]
    assert is_opaque(v["label_id"], "documents/") and is_opaque(v["group_id"], "messages/group/")
    body = json.loads(h(v["collection_created_body"]))
    assert body == {"name": v["label_id"], "kind": "keys"}
    assert "board" not in h(v["collection_created_body"]).decode()
    names = Names.from_bytes(h(v["record"]), 1)
    assert names.to_bytes().hex() == v["record"]
    assert {c: names.display(c) for c in names.names} == v["shown"]
    assert names.id_of("documents/", "board-papers") == v["label_id"]
    assert names.collection_for("messages/group/crew") == v["group_id"]


def test_signed_envelope_bytes_signature_and_verification() -> None:
    from keystead.core.envelope import SignedEnvelope

    v = V["signed_envelope"]
    key = SigningKey(K["laptop_signing_seed"])
    made = SignedEnvelope.sign(key, purpose=v["purpose"], signer=v["signer"], body=h(v["body"]))
    assert made.to_bytes().hex() == v["wire"]
    assert made.signature.hex() == v["sig"]
    parsed = SignedEnvelope.from_bytes(h(v["wire"]), purpose=v["purpose"])
    assert parsed.verify(key.verify_key).hex() == v["body"]
    VerifyKey(key.verify_key.raw).verify(v["purpose"], h(v["signed_message"]), h(v["sig"]))
