"""Account changes on protocol v2, in process: admin removal rotates the account key,
recovery survives a stale admin, a bundle whose answer was lost is finished by a resend."""

from __future__ import annotations

import httpx
import pytest
from core_harness import PASSPHRASE, InProcessService
from keystead.core import _umbral
from keystead.core import account as acct
from keystead.core._encoding import b64e
from keystead.core.chain import make_entry
from keystead.core.collections import Collection
from keystead.core.device import Device
from keystead.core.errors import DecryptionFailed, InvalidSignature, NetworkError
from keystead.core.home import Home
from keystead.core.keys import AccountSecrets
from keystead.core.sealed import seal_key

LABEL = "documents/default"


@pytest.fixture
def alice(svc: InProcessService) -> Device:
    dev, _ = svc.create()
    return dev


def _secrets(dev: Device) -> AccountSecrets:
    secrets = dev.secrets
    assert secrets is not None
    return secrets


def test_admin_removal_rotates_the_account_key_and_bumps_key_generation(
    svc: InProcessService, alice: Device
) -> None:
    laptop2 = svc.join(alice, "laptop2", role="admin")
    phone = svc.join(alice, "phone", scopes=["notes"])
    Collection(alice, "notes").put("a", b"before")
    before = alice.chain()
    old = _secrets(laptop2)
    assert before.key_generation == 0 and old.account_key.verify_key == before.signing_key
    acct.remove_device(alice, "laptop2")
    after = alice.chain()
    assert after.key_generation == 1 and _secrets(alice).key_generation == 1
    assert after.signing_key != before.signing_key
    assert after.kfrag_signer != before.kfrag_signer
    assert after.fingerprint == before.fingerprint  # the pinned identity stays
    # Every collection (an admin read them all) starts a new epoch.
    assert all(
        c.current_epoch == before.collections[n].current_epoch + 1
        for n, c in after.collections.items()
    )
    # What the removed admin signs with the key it kept is refused by every client.
    forged = make_entry(
        old.account_key,
        account=alice.account,
        seq=after.seq + 1,
        prev=after.head,
        time=int(svc.clock()),
        type="sharing-key",
        body={
            "generation": after.sharing_generation + 1,
            "public_key": b64e(_umbral.PRESecretKey.generate().public_key.raw),
        },
    )
    with pytest.raises(InvalidSignature):
        after.extend([forged])
    # The removed admin's epoch secrets open nothing of the new epochs.
    new_notes = after.collection("notes").current
    old_notes = old.epoch_secret("notes", new_notes.epoch - 1)
    assert old_notes is not None and old.epoch_secret("notes", new_notes.epoch) is None
    assert new_notes.capsule is not None and new_notes.ciphertext is not None
    with pytest.raises(DecryptionFailed):
        _umbral.decrypt(old_notes, new_notes.capsule, new_notes.ciphertext)
    # The remaining member reads old and new items through grants made by the new signer.
    Collection(alice, "notes").put("b", b"after")
    pc = Collection(phone, "notes")
    pc.sync()
    assert {r.id: r.plaintext for r in pc.records()} == {"a": b"before", "b": b"after"}
    # A second admin removal counts up again.
    desk = svc.join(alice, "desk", role="admin")
    acct.remove_device(alice, "desk")
    assert alice.chain().key_generation == 2
    assert desk.device_id in alice.chain().devices


def test_member_removal_keeps_the_account_key(svc: InProcessService, alice: Device) -> None:
    svc.join(alice, "phone", scopes=["notes"])
    before = alice.chain()
    acct.remove_device(alice, "phone")
    after = alice.chain()
    assert (after.key_generation, after.signing_key) == (0, before.signing_key)
    assert after.sharing_generation == before.sharing_generation + 1
    # Only what the member could read starts a new epoch (and _account, which all read).
    moved = sorted(
        n
        for n, c in after.collections.items()
        if c.current_epoch != before.collections[n].current_epoch
    )
    assert moved == ["_account", "notes"]


def test_recovery_works_after_a_label_by_one_admin_and_a_removal_by_a_stale_admin(
    svc: InProcessService,
) -> None:
    """Finding #9 of the security review: an admin that joined before a label existed, then
    removed a device, published its stale copy of the secrets and broke recovery."""
    # "documents" is the scope that lets a device open labels ("documents/...").
    carol, recovery = svc.create("carol", collections=("notes", "documents"))
    stale = svc.join(carol, "carol-b", role="admin")  # joins before the label exists
    svc.join(carol, "phone", scopes=["notes"])
    Collection(carol, "notes").put("n", b"note")
    assert acct.ensure_collections(carol, [LABEL], kind="keys") == [LABEL]
    before_removal = seal_key(carol.chain(), LABEL, b"document key 1")
    assert _secrets(stale).epoch_secret(LABEL, 1) is None  # its own copy is stale
    acct.remove_device(stale, "phone")  # by the stale admin
    after_removal = seal_key(carol.chain(), LABEL, b"document key 2")
    assert (before_removal.epoch, after_removal.epoch) == (1, 2)
    # The stale admin merged the newest _admin copy before building: nothing was dropped.
    merged = _secrets(stale)
    assert merged.epoch_secret(LABEL, 1) is not None and merged.epoch_secret(LABEL, 2)
    rescued = acct.recover_account(
        Home(svc.tmp / "carol-rescue"),
        svc.url,
        "carol",
        recovery,
        "rescue",
        PASSPHRASE,
        transport=svc.transport,
        clock=svc.clock,
    )
    assert rescued.me().role == "admin"
    secrets = _secrets(rescued)
    assert {e for e in secrets.epochs[LABEL]} == {1, 2}
    assert secrets.account_key.verify_key == rescued.chain().signing_key
    chain = rescued.chain()
    assert rescued.open_sealed(chain, [before_removal, after_removal]) == [
        b"document key 1",
        b"document key 2",
    ]
    notes = Collection(rescued, "notes")
    notes.sync()
    assert notes.get("n").plaintext == b"note"  # type: ignore[union-attr]
    # And the rescued admin can change the account in its turn.
    acct.remove_device(rescued, "carol-b")
    assert rescued.chain().key_generation == 1
    again = acct.recover_account(
        Home(svc.tmp / "carol-rescue-2"),
        svc.url,
        "carol",
        recovery,
        "rescue2",
        PASSPHRASE,
        transport=svc.transport,
        clock=svc.clock,
    )
    assert _secrets(again).key_generation == 1
    assert again.open_sealed(again.chain(), [after_removal]) == [b"document key 2"]


def test_a_bundle_whose_answer_was_lost_is_finished_by_a_resend(
    svc: InProcessService, alice: Device
) -> None:
    phone = svc.join(alice, "phone", scopes=["notes"])

    def lose_answer(request: httpx.Request, resp: httpx.Response) -> httpx.Response:
        if request.url.path.endswith("/bundle"):
            raise httpx.ReadTimeout("answer lost", request=request)
        return resp

    svc.transport.rewrite = lose_answer
    with pytest.raises(NetworkError):
        acct.remove_device(alice, "phone")
    svc.transport.rewrite = None
    assert "pending" in alice.keystore.data  # kept until the service answers
    applied = svc.store.chain_state(alice.account)
    assert not applied.devices[phone.device_id].live  # the service did apply it
    assert acct.finish_pending(alice) is True
    assert "pending" not in alice.keystore.data
    assert svc.store.chain_state(alice.account).seq == applied.seq  # nothing twice
    # The device took the new secrets: it holds the new sharing key and can change more.
    assert applied.sharing_generation in _secrets(alice).sharing
    assert acct.ensure_collections(alice, ["journal"]) == ["journal"]
    assert acct.finish_pending(alice) is False
