"""Grants at the primitive level: kfrags and cfrags verify only for their signer and keys."""

from __future__ import annotations

import pytest
from keystead.core import _umbral as u
from keystead.core._umbral import PREPublicKey, PRESecretKey
from keystead.core.errors import DecryptionFailed, FormatError, VerificationError


@pytest.fixture
def keys() -> dict[str, PRESecretKey]:
    return {n: PRESecretKey.generate() for n in ("collection", "device", "signer", "other")}


def test_grant_round_trip(keys: dict[str, PRESecretKey]) -> None:
    coll, dev, signer = keys["collection"], keys["device"], keys["signer"]
    capsule, ct = u.encrypt(coll.public_key, b"epoch key")
    assert len(capsule) == u.CAPSULE_SIZE
    assert u.decrypt(coll, capsule, ct) == b"epoch key"
    kfrag = u.make_kfrag(coll, dev.public_key, signer)
    u.verify_kfrag(
        kfrag, signer=signer.public_key, delegating=coll.public_key, receiving=dev.public_key
    )
    cfrag = u.reencrypt(capsule, kfrag)
    assert u.ReencryptorCache().reencrypt(capsule, kfrag)
    u.verify_cfrag(
        cfrag,
        capsule=capsule,
        signer=signer.public_key,
        delegating=coll.public_key,
        receiving=dev.public_key,
    )
    assert u.decrypt_reencrypted(dev, coll.public_key, capsule, [cfrag], ct) == b"epoch key"


@pytest.mark.parametrize("wrong", ["signer", "delegating", "receiving", "garbage"])
def test_kfrag_that_fails_verification_is_refused(
    keys: dict[str, PRESecretKey], wrong: str
) -> None:
    coll, dev, signer, other = (keys[k] for k in ("collection", "device", "signer", "other"))
    kfrag = u.make_kfrag(coll, dev.public_key, signer)
    args = {"signer": signer.public_key, "delegating": coll.public_key, "receiving": dev.public_key}
    if wrong == "garbage":
        kfrag = kfrag[:-1] + bytes([kfrag[-1] ^ 1])
    else:
        args[wrong] = other.public_key
    with pytest.raises(VerificationError):
        u.verify_kfrag(kfrag, **args)
    with pytest.raises(VerificationError):
        u.verify_kfrag(b"not a kfrag", **args)


@pytest.mark.parametrize("wrong", ["capsule", "signer", "receiving", "garbage", "kfrag"])
def test_cfrag_that_fails_verification_is_refused(
    keys: dict[str, PRESecretKey], wrong: str
) -> None:
    coll, dev, signer, other = (keys[k] for k in ("collection", "device", "signer", "other"))
    capsule, _ = u.encrypt(coll.public_key, b"k")
    other_capsule, _ = u.encrypt(coll.public_key, b"k")
    kfrag = u.make_kfrag(coll, dev.public_key, signer)
    if wrong == "kfrag":  # a kfrag signed by someone else than the account's kfrag signer
        kfrag = u.make_kfrag(coll, dev.public_key, other)
    cfrag = u.reencrypt(capsule, kfrag)
    args = {
        "capsule": capsule,
        "signer": signer.public_key,
        "delegating": coll.public_key,
        "receiving": dev.public_key,
    }
    if wrong == "capsule":
        args["capsule"] = other_capsule
    elif wrong in ("signer", "receiving"):
        args[wrong] = other.public_key
    elif wrong == "garbage":
        cfrag = cfrag[:-1] + bytes([cfrag[-1] ^ 1])
    with pytest.raises(VerificationError):
        u.verify_cfrag(cfrag, **args)  # type: ignore[arg-type]


def test_decryption_failures_are_uniform(keys: dict[str, PRESecretKey]) -> None:
    capsule, ct = u.encrypt(keys["collection"].public_key, b"k")
    with pytest.raises(DecryptionFailed):
        u.decrypt(keys["other"], capsule, ct)
    with pytest.raises(DecryptionFailed):
        u.decrypt(keys["collection"], capsule, ct[:-1] + bytes([ct[-1] ^ 1]))


@pytest.mark.parametrize("raw", [b"", bytes(33), b"\x02" + bytes(32), bytes(34)])
def test_bad_public_keys_and_capsules_are_format_errors(raw: bytes) -> None:
    with pytest.raises(FormatError):
        PREPublicKey(raw)
    with pytest.raises(FormatError):
        u.reencrypt(raw, b"")


def test_bad_secret_key_is_a_format_error() -> None:
    with pytest.raises(FormatError):
        PRESecretKey(bytes(32))
