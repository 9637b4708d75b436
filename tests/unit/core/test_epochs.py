"""Epochs: a fresh key pair each, the data key sealed to it, the previous secret wrapped
under the new data key, so one grant on the newest epoch opens the history and nothing
older opens anything newer."""

from __future__ import annotations

import pytest
from keystead.core import _umbral
from keystead.core._encoding import b64d
from keystead.core._umbral import PREPublicKey, PRESecretKey
from keystead.core.chain import CollectionInfo, EpochInfo
from keystead.core.epochs import NewEpoch, data_key, new_epoch, previous_secret, walk_back
from keystead.core.errors import DecryptionFailed

ACCOUNT, COLL = "alice", "notes"


def info(made: NewEpoch, seq: int = 1) -> EpochInfo:
    b = made.body
    return EpochInfo(
        b["epoch"],
        PREPublicKey(b64d(b["public_key"])),
        seq,
        b64d(b["capsule"]) if "capsule" in b else None,
        b64d(b["ciphertext"]) if "ciphertext" in b else None,
        b64d(b["previous"]) if "previous" in b else None,
    )


def history(
    n: int, account: str = ACCOUNT, coll: str = COLL
) -> tuple[list[NewEpoch], CollectionInfo]:
    made: list[NewEpoch] = []
    for e in range(1, n + 1):
        made.append(new_epoch(account, coll, "items", e, made[-1].secret if made else None))
    return made, CollectionInfo(
        coll, "items", {m.body["epoch"]: info(m, i) for i, m in enumerate(made)}
    )


def test_each_epoch_has_its_own_key_pair_and_data_key() -> None:
    made, coll = history(3)
    assert len({m.secret.public_key.raw for m in made}) == 3
    assert len({m.data_key for m in made}) == 3
    for m in made:
        assert data_key(m.secret, coll.epoch(m.body["epoch"])) == m.data_key
    assert "previous" not in made[0].body and "previous" in made[1].body


def test_the_newest_data_key_walks_back_through_every_epoch() -> None:
    made, coll = history(4)
    newest = made[-1].data_key
    assert newest is not None
    keys = walk_back(ACCOUNT, coll, 4, newest, {1, 2, 3, 4})
    assert keys == {m.body["epoch"]: m.data_key for m in made}
    # every key on the way down to the oldest one wanted, for the caller to keep
    assert walk_back(ACCOUNT, coll, 4, newest, {2}) == {
        m.body["epoch"]: m.data_key for m in made[1:]
    }
    assert (
        previous_secret(ACCOUNT, coll, 2, made[1].data_key or b"").public_key
        == made[0].secret.public_key
    )


def test_an_older_epoch_opens_nothing_newer() -> None:
    made, coll = history(2)
    new = coll.epoch(2)
    assert new.capsule is not None and new.ciphertext is not None
    with pytest.raises(DecryptionFailed):  # epoch 1's secret on epoch 2's data key
        data_key(made[0].secret, new)
    with pytest.raises(DecryptionFailed):  # the first epoch wraps nothing older
        previous_secret(ACCOUNT, coll, 1, made[0].data_key or b"")


def test_the_wrapped_previous_secret_is_bound_to_its_place() -> None:
    made, coll = history(2)
    key = made[1].data_key
    assert key is not None
    for account, name in (("bob", COLL), (ACCOUNT, "passwords")):
        moved = CollectionInfo(name, "items", coll.epochs)
        with pytest.raises(DecryptionFailed):
            previous_secret(account, moved, 2, key)
    with pytest.raises(DecryptionFailed):  # the wrong data key
        previous_secret(ACCOUNT, coll, 2, made[0].data_key or b"")


def test_keys_epochs_carry_only_a_public_key() -> None:
    made = new_epoch(ACCOUNT, "documents/x", "keys", 1, None)
    assert set(made.body) == {"collection", "epoch", "public_key"} and made.data_key is None
    with pytest.raises(DecryptionFailed):
        data_key(made.secret, info(made))
    capsule, ct = _umbral.encrypt(made.secret.public_key, b"document key")
    assert _umbral.decrypt(made.secret, capsule, ct) == b"document key"


def test_an_items_epoch_after_the_first_needs_the_previous_secret() -> None:
    with pytest.raises(ValueError):
        new_epoch(ACCOUNT, COLL, "items", 2, None)
    assert new_epoch(ACCOUNT, COLL, "items", 2, PRESecretKey.generate()).body["epoch"] == 2
