"""Regenerate the core protocol's known-answer vectors (docs/PROTOCOL.md, docs/FORMAT.md).

Run from the repository root: ``python tests/vectors/core/generate.py``.

Every key is fixed (derived from a name by SHA-256), every AEAD nonce is fixed, and Ed25519
is deterministic, so the chain entries, signatures, associated data, messages, digests and
AEAD ciphertexts are reproducible byte for byte. Umbral encryption, kfrags and ECDSA
signatures are randomized: they are made once and kept from the committed file (pass
``--new-randomness`` to make them again); the tests check that they open or verify with the
fixed keys.

This script builds the bytes from the documents' definitions with ``cryptography`` and
``umbral_pre`` directly; ``tests/unit/core/test_vectors.py`` checks the library against them.
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
import sys
from pathlib import Path
from typing import Any

import umbral_pre as u
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

HERE = Path(__file__).resolve().parent
OUT = HERE / "vectors.json"

ACCOUNT = "alice"
TIME = 1_700_000_000


def seed(name: str) -> bytes:
    """A fixed 32-byte secret named ``name`` (valid as Ed25519 seed and secp256k1 scalar)."""
    return hashlib.sha256(b"keystead-vectors/" + name.encode()).digest()


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def cjson(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def ed_pub(s: bytes) -> bytes:
    return (
        Ed25519PrivateKey.from_private_bytes(s)
        .public_key()
        .public_bytes(Encoding.Raw, PublicFormat.Raw)
    )


def ed_sign(s: bytes, purpose: str, message: bytes) -> bytes:
    return Ed25519PrivateKey.from_private_bytes(s).sign(purpose.encode() + b"\x00" + message)


def pre_pub(s: bytes) -> bytes:
    return bytes(u.SecretKey.from_be_bytes(s).public_key().to_compressed_bytes())


def aead(key: bytes, nonce: bytes, plaintext: bytes, ad: bytes) -> bytes:
    return nonce + ChaCha20Poly1305(key).encrypt(nonce, plaintext, ad)


def nonce(name: str) -> bytes:
    return seed("nonce/" + name)[:12]


KEYS = {
    "account_key_seed": seed("account-key-0"),
    "new_account_key_seed": seed("account-key-1"),
    "kfrag_signer": seed("kfrag-signer-0"),
    "new_kfrag_signer": seed("kfrag-signer-1"),
    "recovery_key": seed("recovery-key"),
    "sharing_key_0": seed("sharing-key-0"),
    "sharing_key_1": seed("sharing-key-1"),
    "laptop_signing_seed": seed("laptop-signing"),
    "laptop_pre": seed("laptop-pre"),
    "laptop_ssh_seed": seed("laptop-ssh"),
    "device_signing_seed": seed("device-signing"),
    "device_pre": seed("device-pre"),
    "device_ssh_seed": seed("device-ssh"),
    "epoch_1_secret": seed("passwords-epoch-1"),
    "epoch_2_secret": seed("passwords-epoch-2"),
    "epoch_1_data_key": seed("passwords-data-key-1"),
    "epoch_2_data_key": seed("passwords-data-key-2"),
}


def previous_ad(account: str, collection: str, epoch: int) -> bytes:
    return b"\x00".join(
        (
            b"keystead/v2/epoch/previous-secret",
            account.encode(),
            collection.encode(),
            struct.pack(">Q", epoch),
        )
    )


def item_ad(
    account: str,
    collection: str,
    item_id: str,
    version: int,
    epoch: int,
    deleted: bool,
    writer: str,
) -> bytes:
    return b"\x00".join(
        (
            b"keystead/v2/item",
            account.encode(),
            collection.encode(),
            item_id.encode(),
            struct.pack(">QQ?", version, epoch, deleted),
            writer.encode(),
        )
    )


def randomized(old: dict[str, Any], fresh: bool, secrets: bytes) -> dict[str, str]:
    """Umbral capsules, kfrags and the recovery blob: kept from the committed file."""
    if not fresh and "randomized" in old:
        return dict(old["randomized"])
    k = {
        n: u.SecretKey.from_be_bytes(v)
        for n, v in KEYS.items()
        if n
        in ("epoch_1_secret", "epoch_2_secret", "laptop_pre", "new_kfrag_signer", "recovery_key")
    }
    c1, t1 = u.encrypt(k["epoch_1_secret"].public_key(), KEYS["epoch_1_data_key"])
    c2, t2 = u.encrypt(k["epoch_2_secret"].public_key(), KEYS["epoch_2_data_key"])
    sc, st = u.encrypt(k["epoch_2_secret"].public_key(), SEALED_SECRET)
    kfrag = u.generate_kfrags(
        delegating_sk=k["epoch_2_secret"],
        receiving_pk=k["laptop_pre"].public_key(),
        signer=u.Signer(k["new_kfrag_signer"]),
        threshold=1,
        shares=1,
        sign_delegating_key=True,
        sign_receiving_key=True,
    )[0]
    rc, rt = u.encrypt(k["recovery_key"].public_key(), secrets)
    return {
        "epoch_1_capsule": bytes(c1).hex(),
        "epoch_1_ciphertext": bytes(t1).hex(),
        "epoch_2_capsule": bytes(c2).hex(),
        "epoch_2_ciphertext": bytes(t2).hex(),
        "sealed_capsule": bytes(sc).hex(),
        "sealed_ciphertext": bytes(st).hex(),
        "epoch_2_kfrag_to_laptop": bytes(kfrag).hex(),
        "recovery_blob": (bytes(rc) + bytes(rt)).hex(),
    }


SEALED_SECRET = bytes(range(32))


def build(fresh: bool) -> dict[str, Any]:
    old = json.loads(OUT.read_text()) if OUT.exists() else {}
    # the account secrets after the removal below (FORMAT.md "Account secrets")
    secrets = cjson(
        {
            "v": 2,
            "account_key": b64(KEYS["new_account_key_seed"]),
            "key_generation": 1,
            "kfrag_signer": b64(KEYS["new_kfrag_signer"]),
            "recovery_key": b64(pre_pub(KEYS["recovery_key"])),
            "epochs": {
                "passwords": {"1": b64(KEYS["epoch_1_secret"]), "2": b64(KEYS["epoch_2_secret"])}
            },
            "sharing": {"0": b64(KEYS["sharing_key_0"]), "1": b64(KEYS["sharing_key_1"])},
        }
    )
    rnd = randomized(old, fresh, secrets)
    h = bytes.fromhex

    # ---- the chain: created, collection, epoch 1, laptop (admin) and phone (member) added;
    # then a removal as one bundle: the phone removed, the account key rotated (as for an
    # admin), a new sharing key, epoch 2 of the collection (PROTOCOL.md 9)
    device_id = hashlib.sha256(ed_pub(KEYS["device_signing_seed"])).hexdigest()[:16]
    laptop_id = hashlib.sha256(ed_pub(KEYS["laptop_signing_seed"])).hexdigest()[:16]
    signing = [KEYS["account_key_seed"]]
    chain: list[dict[str, Any]] = []

    def entry(
        type_: str,
        body: dict[str, Any],
        *,
        device_sig: bytes | None = None,
        new_key: bytes | None = None,
    ) -> dict[str, Any]:
        seq = len(chain)
        prev = chain[-1]["digest"] if chain else ""
        raw = cjson(
            {
                "v": 2,
                "account": ACCOUNT,
                "seq": seq,
                "prev": prev,
                "time": TIME + seq,
                "type": type_,
                "body": body,
            }
        )
        out: dict[str, Any] = {
            "type": type_,
            "seq": seq,
            "prev": prev,
            "time": TIME + seq,
            "body": body,
            "entry": raw.hex(),
            "digest": hashlib.sha256(raw).hexdigest(),
            "sig": ed_sign(signing[-1], "keystead/v2/chain/entry", raw).hex(),
        }
        if device_sig is not None:
            out["device_sig"] = device_sig.hex()
        if new_key is not None:
            out["new_key_sig"] = ed_sign(new_key, "keystead/v2/chain/key-rotation", raw).hex()
            signing.append(new_key)
        chain.append(out)
        return out

    entry(
        "account-created",
        {
            "account_key": b64(ed_pub(KEYS["account_key_seed"])),
            "kfrag_signer": b64(pre_pub(KEYS["kfrag_signer"])),
            "recovery_key": b64(pre_pub(KEYS["recovery_key"])),
            "sharing_key": b64(pre_pub(KEYS["sharing_key_0"])),
        },
    )
    entry("collection-created", {"name": "passwords", "kind": "items"})
    entry(
        "epoch",
        {
            "collection": "passwords",
            "epoch": 1,
            "public_key": b64(pre_pub(KEYS["epoch_1_secret"])),
            "capsule": b64(h(rnd["epoch_1_capsule"])),
            "ciphertext": b64(h(rnd["epoch_1_ciphertext"])),
        },
    )
    laptop_body = {
        "id": laptop_id,
        "name": "laptop",
        "signing_key": b64(ed_pub(KEYS["laptop_signing_seed"])),
        "pre_key": b64(pre_pub(KEYS["laptop_pre"])),
        "ssh_key": b64(ed_pub(KEYS["laptop_ssh_seed"])),
    }
    entry(
        "device-added",
        {**laptop_body, "role": "admin", "scopes": ["_account", "passwords"]},
        device_sig=ed_sign(
            KEYS["laptop_signing_seed"],
            "keystead/v2/chain/device-countersign",
            cjson({"account": ACCOUNT, **laptop_body}),
        ),
    )
    device_body = {
        "id": device_id,
        "name": "phone",
        "signing_key": b64(ed_pub(KEYS["device_signing_seed"])),
        "pre_key": b64(pre_pub(KEYS["device_pre"])),
        "ssh_key": b64(ed_pub(KEYS["device_ssh_seed"])),
    }
    statement = cjson({"account": ACCOUNT, **device_body})
    entry(
        "device-added",
        {**device_body, "role": "member", "scopes": ["_account", "passwords"]},
        device_sig=ed_sign(
            KEYS["device_signing_seed"], "keystead/v2/chain/device-countersign", statement
        ),
    )
    base = len(chain) - 1
    entry("device-removed", {"id": device_id})
    entry(
        "account-key-rotated",
        {
            "generation": 1,
            "account_key": b64(ed_pub(KEYS["new_account_key_seed"])),
            "kfrag_signer": b64(pre_pub(KEYS["new_kfrag_signer"])),
        },
        new_key=KEYS["new_account_key_seed"],
    )
    entry("sharing-key", {"generation": 1, "public_key": b64(pre_pub(KEYS["sharing_key_1"]))})
    prev_ad = previous_ad(ACCOUNT, "passwords", 2)
    previous = aead(KEYS["epoch_2_data_key"], nonce("previous"), KEYS["epoch_1_secret"], prev_ad)
    entry(
        "epoch",
        {
            "collection": "passwords",
            "epoch": 2,
            "public_key": b64(pre_pub(KEYS["epoch_2_secret"])),
            "capsule": b64(h(rnd["epoch_2_capsule"])),
            "ciphertext": b64(h(rnd["epoch_2_ciphertext"])),
            "previous": b64(previous),
        },
    )

    # ---- an item of epoch 2, written by the laptop
    item_in = {
        "account": ACCOUNT,
        "collection": "passwords",
        "id": "example.com:bob",
        "version": 3,
        "epoch": 2,
        "deleted": False,
        "writer": laptop_id,
        "plaintext": b"hunter2".hex(),
    }
    ad = item_ad(ACCOUNT, "passwords", "example.com:bob", 3, 2, False, laptop_id)
    ct = aead(KEYS["epoch_2_data_key"], nonce("item"), b"hunter2", ad)
    message = ad + b"\x00" + hashlib.sha256(ct).digest()
    leaf = hashlib.sha256(b"\x00" + message).digest()
    item = {
        **item_in,
        "ad": ad.hex(),
        "ciphertext": ct.hex(),
        "message": message.hex(),
        "leaf": leaf.hex(),
        "proof": struct.pack(">HH", 0, 1).hex(),
        "sig": ed_sign(KEYS["laptop_signing_seed"], "keystead/v2/item/signature", leaf).hex(),
    }

    # ---- one write of three items: one signature over the Merkle root, a proof per item
    group_items = []
    for n, (gid, text) in enumerate((("a", b"first"), ("b", b"second"), ("c", b"third"))):
        gad = item_ad(ACCOUNT, "passwords", gid, 1, 2, False, laptop_id)
        gct = aead(KEYS["epoch_2_data_key"], nonce(f"group-{n}"), text, gad)
        gmsg = gad + b"\x00" + hashlib.sha256(gct).digest()
        group_items.append(
            {
                "id": gid,
                "version": 1,
                "epoch": 2,
                "deleted": False,
                "writer": laptop_id,
                "plaintext": text.hex(),
                "ciphertext": gct.hex(),
                "leaf": hashlib.sha256(b"\x00" + gmsg).digest().hex(),
            }
        )
    leaves = [h(g["leaf"]) for g in group_items]
    levels = [leaves]
    while len(levels[-1]) > 1:  # an odd last node goes up unchanged
        cur = levels[-1]
        levels.append(
            [
                hashlib.sha256(b"\x01" + cur[i] + cur[i + 1]).digest()
                if i + 1 < len(cur)
                else cur[i]
                for i in range(0, len(cur), 2)
            ]
        )
    root = levels[-1][0]
    for index, g in enumerate(group_items):
        path, pos = b"", index
        for level in levels[:-1]:
            if pos ^ 1 < len(level):
                path += level[pos ^ 1]
            pos //= 2
        g["proof"] = (struct.pack(">HH", index, len(group_items)) + path).hex()
    group = {
        "account": ACCOUNT,
        "collection": "passwords",
        "items": group_items,
        "root": root.hex(),
        "sig": ed_sign(KEYS["laptop_signing_seed"], "keystead/v2/item/signature", root).hex(),
    }
    del_ad = item_ad(ACCOUNT, "passwords", "example.com:bob", 4, 2, True, laptop_id)
    deletion = {
        "id": "example.com:bob",
        "version": 4,
        "epoch": 2,
        "deleted": True,
        "writer": laptop_id,
        "ad": del_ad.hex(),
    }

    # ---- a sealed-key record to epoch 2
    record = cjson(
        {
            "v": 2,
            "owner": ACCOUNT,
            "key": "passwords",
            "epoch": 2,
            "capsule": b64(h(rnd["sealed_capsule"])),
            "ciphertext": b64(h(rnd["sealed_ciphertext"])),
        }
    )

    # ---- the removal bundle: entries 5-8 on top of entry 4, the laptop's grant on the new
    # epoch (made by the new kfrag signer), an item the laptop writes, the new recovery blob
    bundle = {
        "base": {"seq": base, "head": chain[base]["digest"]},
        "entries": [
            {k: b64(h(e[k])) for k in ("entry", "sig", "new_key_sig") if k in e}
            for e in chain[base + 1 :]
        ],
        "grants": [
            {
                "key": "passwords",
                "epoch": 2,
                "target_kind": "device",
                "target": laptop_id,
                "target_generation": 0,
                "kfrag": b64(h(rnd["epoch_2_kfrag_to_laptop"])),
                "expires": None,
            }
        ],
        "delete_grants": [],
        "items": [
            {
                "collection": "passwords",
                "id": item["id"],
                "version": 3,
                "epoch": 2,
                "ciphertext": b64(ct),
                "deleted": False,
                "seq": 0,
                "writer": laptop_id,
                "sig": b64(h(item["sig"])),
                "proof": b64(h(item["proof"])),
            }
        ],
        "recovery_blob": b64(h(rnd["recovery_blob"])),
    }
    digest = b"keystead/v2/bundle\x00" + hashlib.sha256(cjson(bundle)).digest()
    recovery = u.SecretKey.from_be_bytes(KEYS["recovery_key"])
    rsig = old.get("bundle", {}).get("recovery_sig", "")
    if (
        fresh
        or not rsig
        or not u.Signature.from_be_bytes(h(rsig)).verify(recovery.public_key(), digest)
    ):  # kept while it still signs this digest
        rsig = bytes(u.Signer(recovery).sign(digest).to_be_bytes()).hex()

    # ---- a signed request
    req = {
        "method": "POST",
        "origin": "https://keys.example.org:8443",
        "path": "/v1/accounts/alice/bundle",
        "digest": hashlib.sha256(b"{}").hexdigest(),
        "time": TIME,
        "nonce": b64(bytes(range(16))),
        "account": ACCOUNT,
        "device": laptop_id,
    }
    req_msg = "\n".join(
        [
            req["method"],
            req["origin"],
            req["path"],
            req["digest"],
            str(req["time"]),
            req["nonce"],
            req["account"],
            req["device"],
        ]
    ).encode()

    # ---- a keystore (scrypt 2^14, the lowest the reader accepts)
    salt = bytes(range(16))
    ks_key = Scrypt(salt=salt, length=32, n=2**14, r=8, p=1).derive(b"correct horse")
    contents = json.dumps(
        {
            "device": {
                "signing": b64(KEYS["device_signing_seed"]),
                "pre": b64(KEYS["device_pre"]),
                "ssh": b64(KEYS["device_ssh_seed"]),
            },
            "account_key": b64(ed_pub(KEYS["account_key_seed"])),
        },
        separators=(",", ":"),
    ).encode()
    keystore = {
        "keystead-keystore": 2,
        "kdf": {"alg": "scrypt", "n": 2**14, "r": 8, "p": 1, "salt": b64(salt)},
        "sealed": b64(aead(ks_key, nonce("keystore"), contents, b"keystead/v2/keystore")),
    }

    # ---- opaque collection ids and the name record (item "names" of "_account")
    label_id = "documents/" + hashlib.sha256(b"keystead-vectors/label-id").hexdigest()[:32]
    group_id = "messages/group/" + hashlib.sha256(b"keystead-vectors/group-id").hexdigest()[:32]
    names_record = cjson({"v": 1, "names": {label_id: "board-papers", group_id: "crew"}})
    label_entry_body = cjson({"name": label_id, "kind": "keys"})

    # ---- a signed envelope (a message of format 2 as its body)
    env_purpose = "keystead/v2/messaging/envelope"
    env_signer = f"{ACCOUNT}@keys.example.org:8443/{laptop_id}"
    env_body = cjson({"v": 2, "example": "any bytes the purpose defines"})
    env_signed = b"keystead-envelope/1\n" + env_signer.encode() + b"\n" + env_body
    env_sig = ed_sign(KEYS["laptop_signing_seed"], env_purpose, env_signed)
    env_wire = cjson(
        {
            "v": 1,
            "purpose": env_purpose,
            "signer": env_signer,
            "body": b64(env_body),
            "sig": b64(env_sig),
        }
    )

    return {
        "about": "Keystead protocol v2 known-answer vectors; bytes are hex. See "
        "docs/PROTOCOL.md and docs/FORMAT.md; rebuilt by generate.py.",
        "account": ACCOUNT,
        "keys": {k: v.hex() for k, v in KEYS.items()},
        "device_id": device_id,
        "laptop_id": laptop_id,
        "account_secrets": secrets.hex(),
        "randomized": rnd,
        "chain": chain,
        "device_statement": statement.hex(),
        "previous": {
            "account": ACCOUNT,
            "collection": "passwords",
            "epoch": 2,
            "ad": prev_ad.hex(),
            "sealed": previous.hex(),
            "plaintext": KEYS["epoch_1_secret"].hex(),
        },
        "item": item,
        "item_group": group,
        "deletion": deletion,
        "sealed_key": {
            "owner": ACCOUNT,
            "key": "passwords",
            "epoch": 2,
            "bytes": record.hex(),
            "plaintext": SEALED_SECRET.hex(),
        },
        "bundle": {"body": bundle, "digest": digest.hex(), "recovery_sig": rsig},
        "names": {
            "label_id": label_id,
            "group_id": group_id,
            "collection_created_body": label_entry_body.hex(),
            "record": names_record.hex(),
            "shown": {label_id: "documents/board-papers", group_id: "messages/group/crew"},
        },
        "signed_envelope": {
            "purpose": env_purpose,
            "signer": env_signer,
            "body": env_body.hex(),
            "signed_message": env_signed.hex(),
            "sig": env_sig.hex(),
            "wire": env_wire.hex(),
        },
        "request": {
            **req,
            "message": req_msg.hex(),
            "sig": ed_sign(KEYS["laptop_signing_seed"], "keystead/v2/request", req_msg).hex(),
        },
        "keystore": {
            "passphrase": "correct horse",
            "file": keystore,
            "key": ks_key.hex(),
            "contents": contents.hex(),
        },
    }


def main() -> None:
    vectors = build("--new-randomness" in sys.argv[1:])
    OUT.write_text(json.dumps(vectors, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
