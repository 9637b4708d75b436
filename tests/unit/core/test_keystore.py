"""The device keystore: encrypted at rest, 0600, atomic, strict about what it opens."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from keystead.core._umbral import PRESecretKey
from keystead.core.errors import FormatError, KeystoreLocked, StorageError, UnsupportedVersion
from keystead.core.keys import (
    AccountSecrets,
    DeviceKeys,
    format_recovery_key,
    parse_recovery_key,
)
from keystead.core.keystore import Keystore, atomic_write

N = 2**14  # the smallest cost the keystore accepts: tests stay fast


def test_round_trip_mode_and_no_plaintext(tmp_path: Path) -> None:
    path = tmp_path / "home" / "keystore.json"
    store = Keystore.create(path, "pw", {"secret": "s3cr3t-value"}, scrypt_n=N)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert b"s3cr3t-value" not in path.read_bytes()
    store.data["more"] = 1
    store.save()
    assert Keystore.open(path, "pw").data == {"secret": "s3cr3t-value", "more": 1}
    assert [p.name for p in path.parent.iterdir()] == ["keystore.json"]  # no temp files left


def test_wrong_or_empty_passphrase(tmp_path: Path) -> None:
    path = tmp_path / "keystore.json"
    Keystore.create(path, "pw", {}, scrypt_n=N)
    with pytest.raises(KeystoreLocked):
        Keystore.open(path, "wrong")
    with pytest.raises(KeystoreLocked):
        Keystore.create(tmp_path / "other.json", "", {}, scrypt_n=N)


def test_create_refuses_to_overwrite_and_open_needs_a_file(tmp_path: Path) -> None:
    path = tmp_path / "keystore.json"
    Keystore.create(path, "pw", {"a": 1}, scrypt_n=N)
    before = path.read_bytes()
    with pytest.raises(StorageError):
        Keystore.create(path, "pw", {}, scrypt_n=N)
    assert path.read_bytes() == before
    with pytest.raises(StorageError):
        Keystore.open(tmp_path / "missing.json", "pw")


@pytest.mark.parametrize(
    "mutate,error",
    [
        (lambda d: d.update({"keystead-keystore": 1}), UnsupportedVersion),
        (lambda d: d.update({"keystead-keystore": 3}), UnsupportedVersion),
        (lambda d: d["kdf"].update({"alg": "md5"}), UnsupportedVersion),
        (lambda d: d["kdf"].update({"n": 2}), FormatError),
        (lambda d: d["kdf"].update({"n": 2**30}), FormatError),
        (lambda d: d["kdf"].update({"n": 2**14 + 1}), FormatError),  # not a power of two
        (lambda d: d["kdf"].update({"n": "16384"}), FormatError),
        # r and p multiply the memory and the time: a crafted file must not make an
        # unlock take hours or all memory
        (lambda d: d["kdf"].update({"r": 2**20}), FormatError),
        (lambda d: d["kdf"].update({"r": 0}), FormatError),
        (lambda d: d["kdf"].update({"p": 10**6}), FormatError),
        (lambda d: d["kdf"].update({"p": True}), FormatError),
        (lambda d: d["kdf"].update({"salt": "AA"}), FormatError),
        (lambda d: d.pop("kdf"), FormatError),
        (lambda d: d.update({"sealed": d["sealed"][:-4] + "AAAA"}), KeystoreLocked),
    ],
)
def test_tampered_keystore_is_refused(tmp_path: Path, mutate, error) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "keystore.json"
    Keystore.create(path, "pw", {}, scrypt_n=N)
    doc = json.loads(path.read_bytes())
    mutate(doc)
    path.write_text(json.dumps(doc))
    with pytest.raises(error):
        Keystore.open(path, "pw")


def test_garbage_keystore_is_a_format_error(tmp_path: Path) -> None:
    path = tmp_path / "keystore.json"
    path.write_bytes(b"\x00garbage")
    with pytest.raises(FormatError):
        Keystore.open(path, "pw")


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path: Path) -> None:
    path = tmp_path / "f"
    atomic_write(path, b"old")

    with pytest.raises(TypeError):
        atomic_write(path, object())  # type: ignore[arg-type]
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f"]


def test_device_keys_and_account_secrets_round_trip() -> None:
    keys = DeviceKeys.generate()
    again = DeviceKeys.from_json(keys.to_json())
    assert again.device_id == keys.device_id
    assert again.pre.public_key == keys.pre.public_key
    secrets = AccountSecrets.generate(PRESecretKey.generate().public_key)
    secrets.epochs["notes"] = {1: PRESecretKey.generate(), 2: PRESecretKey.generate()}
    again = AccountSecrets.from_bytes(secrets.to_bytes())
    assert again.to_bytes() == secrets.to_bytes()
    newest = again.current_secret("notes")
    assert newest is not None and newest[0] == 2
    assert newest[1].public_key == secrets.epochs["notes"][2].public_key
    assert again.epoch_secret("notes", 3) is None
    assert b'"v":2' in secrets.to_bytes()
    with pytest.raises(UnsupportedVersion, match="version 2"):
        AccountSecrets.from_bytes(secrets.to_bytes().replace(b'"v":2', b'"v":1'))


def test_account_secrets_merge_keeps_every_key_and_the_newer_account_key() -> None:
    recovery = PRESecretKey.generate().public_key
    mine = AccountSecrets.generate(recovery)
    theirs = AccountSecrets.generate(recovery)
    mine.epochs["notes"] = {1: PRESecretKey.generate()}
    theirs.epochs["notes"] = {1: PRESecretKey.generate(), 2: PRESecretKey.generate()}
    theirs.epochs["documents/x"] = {1: PRESecretKey.generate()}
    theirs.sharing[1] = PRESecretKey.generate()
    theirs.key_generation = 1
    merged = mine.merge(theirs)
    assert merged.key_generation == 1
    assert merged.account_key.verify_key == theirs.account_key.verify_key
    assert merged.kfrag_signer.public_key == theirs.kfrag_signer.public_key
    assert merged.epochs["notes"][1].public_key == mine.epochs["notes"][1].public_key
    assert merged.epochs["notes"][2].public_key == theirs.epochs["notes"][2].public_key
    assert "documents/x" in merged.epochs and set(merged.sharing) == {0, 1}
    # The other way round: the older copy never takes the newer account key away.
    back = theirs.merge(mine)
    assert back.account_key.verify_key == theirs.account_key.verify_key
    assert set(back.epochs["notes"]) == {1, 2}


def test_recovery_key_has_no_spaces_and_parses_leniently_but_strictly() -> None:
    sk = PRESecretKey.generate()
    text = format_recovery_key(sk)
    assert text.startswith("KSR1-") and " " not in text
    for variant in (text, text.lower(), f"  {text}\n", text.replace("-", " ")):
        assert parse_recovery_key(variant).to_bytes() == sk.to_bytes()
    for bad in ("", "KSR2-" + text[5:], text[:-4], text[:-1] + "1", "hello"):
        with pytest.raises(FormatError):
            parse_recovery_key(bad)
