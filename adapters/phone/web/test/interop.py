"""Umbral interop between Python's umbral-pre 0.11 and the @nucypher/umbral-pre WASM build.

Run by test/interop.test.ts with the worktree's .venv/bin/python:
  interop.py make   -> JSON: keys, a capsule and ciphertext, a kfrag and a cfrag made here
  interop.py open   <- JSON on stdin: what the JS side made; checks and decrypts it here
Also the pairing short authentication string, from keystead's own function.
"""

from __future__ import annotations

import json
import sys

import umbral_pre as u
from keystead.core.pairing import short_authentication_string


def h(b: bytes | None) -> str:
    if b is None:
        raise SystemExit("decryption gave nothing")
    return bytes(b).hex()


def x(s: str) -> bytes:
    return bytes.fromhex(s)


def make() -> None:
    delegating, receiving, signer = u.SecretKey.random(), u.SecretKey.random(), u.SecretKey.random()
    plaintext = b"made in python \x00\xff" * 3
    capsule, ct = u.encrypt(delegating.public_key(), plaintext)
    [kfrag] = u.generate_kfrags(
        delegating_sk=delegating,
        receiving_pk=receiving.public_key(),
        signer=u.Signer(signer),
        threshold=1,
        shares=1,
        sign_delegating_key=True,
        sign_receiving_key=True,
    )
    cfrag = u.reencrypt(capsule, kfrag)
    code, dkey, akey = "ab12cd34ef", bytes(range(32)), bytes(range(32, 64))
    json.dump(
        {
            "delegating_sk": h(delegating.to_be_bytes()),
            "delegating_pk": h(delegating.public_key().to_compressed_bytes()),
            "receiving_sk": h(receiving.to_be_bytes()),
            "signer_pk": h(signer.public_key().to_compressed_bytes()),
            "plaintext": h(plaintext),
            "capsule": h(bytes(capsule)),
            "ciphertext": h(ct),
            "kfrag": h(bytes(kfrag)),
            "cfrag": h(bytes(cfrag)),
            "sas": {
                "code": code,
                "device_key": h(dkey),
                "account_key": h(akey),
                "value": short_authentication_string(code, dkey, akey),
            },
        },
        sys.stdout,
    )


def open_() -> None:
    obj = json.load(sys.stdin)
    delegating = u.SecretKey.from_be_bytes(x(obj["delegating_sk"]))
    receiving = u.SecretKey.from_be_bytes(x(obj["receiving_sk"]))
    signer_pk = u.PublicKey.from_compressed_bytes(x(obj["signer_pk"]))
    capsule = u.Capsule.from_bytes(x(obj["capsule"]))
    ct = x(obj["ciphertext"])
    original = u.decrypt_original(delegating, capsule, ct)
    kfrag = u.KeyFrag.from_bytes(x(obj["kfrag"])).verify(
        signer_pk, delegating.public_key(), receiving.public_key()
    )
    cfrag = u.CapsuleFrag.from_bytes(x(obj["cfrag"])).verify(
        capsule, signer_pk, delegating.public_key(), receiving.public_key()
    )
    own_cfrag = u.reencrypt(capsule, kfrag)
    out = {
        "original": h(original),
        "reencrypted_js_cfrag": h(
            u.decrypt_reencrypted(receiving, delegating.public_key(), capsule, [cfrag], ct)
        ),
        "reencrypted_py_cfrag": h(
            u.decrypt_reencrypted(receiving, delegating.public_key(), capsule, [own_cfrag], ct)
        ),
    }
    try:  # a cfrag checked against another signer must be refused here too
        u.CapsuleFrag.from_bytes(x(obj["cfrag"])).verify(
            capsule, receiving.public_key(), delegating.public_key(), receiving.public_key()
        )
        out["wrong_signer"] = "accepted"
    except Exception:
        out["wrong_signer"] = "refused"
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    {"make": make, "open": open_}[sys.argv[1]]()
