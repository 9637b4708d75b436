"""The attacker's hands: writes forged from docs/PROTOCOL.md and docs/MESSAGING.md alone,
with a removed device's signing seed, sent to the service with the standard library. Like
``adversary.py`` it uses none of Keystead's code: an item sealed and signed (PROTOCOL.md 6),
a signed request (PROTOCOL.md 11), and a direct message sealed to an epoch of the
recipient's ``messages`` key as a sender with a stale copy of the recipient's chain would
seal it (MESSAGING.md)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import struct
import urllib.error
import urllib.request
from typing import Any

import umbral_pre as u
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305


def seal_item(
    key: bytes,
    *,
    account: str,
    collection: str,
    item_id: str,
    version: int,
    epoch: int,
    plaintext: bytes,
    writer: str,
    writer_seed: bytes,
) -> dict[str, Any]:
    """PROTOCOL.md 6: an item sealed and signed (a write of one) from the docs, on the wire."""
    ad = b"\x00".join(
        (
            b"keystead/v2/item",
            account.encode(),
            collection.encode(),
            item_id.encode(),
            struct.pack(">QQ?", version, epoch, False),
            writer.encode(),
        )
    )
    nonce = os.urandom(12)
    ct = nonce + ChaCha20Poly1305(key).encrypt(nonce, plaintext, ad)
    message = ad + b"\x00" + hashlib.sha256(ct).digest()
    root = hashlib.sha256(b"\x00" + message).digest()  # a write of one item: its leaf
    sig = Ed25519PrivateKey.from_private_bytes(writer_seed).sign(
        b"keystead/v2/item/signature\x00" + root
    )
    return {
        "id": item_id,
        "version": version,
        "epoch": epoch,
        "ciphertext": b64e(ct),
        "deleted": False,
        "seq": 0,
        "writer": writer,
        "sig": b64e(sig),
        "proof": b64e(struct.pack(">HH", 0, 1)),
    }


def b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def signed_post(
    base_url: str, path: str, body: Any, *, account: str, device: str, seed: bytes, now: int
) -> tuple[int, dict[str, Any]]:
    """PROTOCOL.md 11: a request signed from the docs, sent with the standard library."""
    raw = json.dumps(body).encode()
    digest = hashlib.sha256(raw).hexdigest()
    nonce = b64e(os.urandom(16))
    origin = base_url.rstrip("/").lower()  # scheme://host[:port]
    message = "\n".join(["POST", origin, path, digest, str(now), nonce, account, device]).encode()
    sig = Ed25519PrivateKey.from_private_bytes(seed).sign(b"keystead/v2/request\x00" + message)
    req = urllib.request.Request(
        base_url + path,
        data=raw,
        method="POST",
        headers={
            "content-type": "application/json",
            "keystead-protocol": "2",
            "keystead-device": f"{account}/{device}",
            "keystead-time": str(now),
            "keystead-nonce": nonce,
            "keystead-content-sha256": digest,
            "keystead-signature": b64e(sig),
        },
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def stale_message(
    *,
    base_url: str,
    sender: str,
    sender_device: str,
    seed: bytes,
    recipient: str,
    recipient_address: str,
    epoch: int,
    epoch_key: bytes,
    text: str,
    now: int,
) -> int:
    """docs/MESSAGING.md: a direct message whose key is sealed to epoch ``epoch`` of the
    recipient's ``messages`` key (public key ``epoch_key``), as a sender whose copy of the
    recipient's chain predates a removal would make it; posted where ``msg send`` posts
    (``/v1/messaging/direct/ACCOUNT``). The status."""

    def cjson(v: Any) -> bytes:
        return json.dumps(v, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()

    message_key = os.urandom(32)
    capsule, ct = u.encrypt(u.PublicKey.from_compressed_bytes(epoch_key), message_key)
    record = cjson(
        {
            "v": 2,
            "owner": recipient,
            "key": "messages",
            "epoch": epoch,
            "capsule": b64e(bytes(capsule)),
            "ciphertext": b64e(bytes(ct)),
        }
    )
    mid = b64e(os.urandom(16))
    header = {
        "v": 2,
        "id": mid,
        "from": sender,
        "device": sender_device,
        "time": now,
        "group": None,
    }
    nonce = os.urandom(12)
    body = nonce + ChaCha20Poly1305(message_key).encrypt(
        nonce, cjson({"v": 2, "text": text}), b"keystead/v1/messaging/body\x00" + cjson(header)
    )
    envelope = cjson({**header, "to": recipient_address, "key": b64e(record), "body": b64e(body)})
    # PROTOCOL.md "Signed envelope": purpose NUL "keystead-envelope/1" LF signer LF body
    purpose, signer = "keystead/v2/messaging/envelope", f"{sender}/{sender_device}"
    sig = Ed25519PrivateKey.from_private_bytes(seed).sign(
        purpose.encode() + b"\x00keystead-envelope/1\n" + signer.encode() + b"\n" + envelope
    )
    wire = cjson(
        {
            "v": 1,
            "purpose": purpose,
            "signer": signer,
            "body": b64e(envelope),
            "sig": b64e(sig),
        }
    )
    account = sender.split("@", 1)[0]
    status, _ = signed_post(
        base_url,
        f"/v1/messaging/direct/{recipient}",
        {"body": b64e(wire)},
        account=account,
        device=sender_device,
        seed=seed,
        now=now,
    )
    return status
