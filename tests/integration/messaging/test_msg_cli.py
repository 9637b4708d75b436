"""``keystead msg`` against a real service process, with several accounts and device homes.

Bad entries are posted through the real service's direct-message route by devices opened
with the library (another account's device, or the sender's own device signing something
wrong); what that route refuses outright (a copy sealed to another account's key) is written
into the spool the way a hostile service could, to show the recipient refuses it too.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from keystead.adapters.messaging import _inbox
from keystead.adapters.messaging._envelope import (
    OLD_FORMAT,
    Group,
    body_ad,
    make_envelope,
    new_message_id,
    seal_body,
)
from keystead.core import (
    Device,
    FormatError,
    b64d,
    b64e,
    canonical_json,
    random_bytes,
    seal_to_key,
)
from keystead.core import Home as CoreHome
from keystead.core.client import path


def _device(home: Any) -> Device:
    dev = Device.open(CoreHome(home.path), home.passphrase)
    dev.chain()
    return dev


def _addr(account: Any) -> str:
    return f"{account.name}@{account.service.url.split('//', 1)[1]}"


def _inbox_json(home: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = home.json("msg", "inbox", "--json")
    return out


_SERVICE: list[Any] = []


@pytest.fixture(autouse=True)
def _the_service(service: Any) -> None:
    _SERVICE[:] = [service]


def _post(dev: Device, to_account: str, wire: bytes) -> int:
    """Post where ``msg send`` posts; what that route refuses before storing (a key sealed
    for another account) goes into the spool as a hostile service would put it."""
    try:
        resp = dev.client.post(path("messaging", "direct", to_account), {"body": b64e(wire)})
        return int(resp["id"])
    except FormatError:
        from keystead.core.service.db import make_engine
        from keystead.core.service.store import Store

        engine = make_engine(_SERVICE[0].database_url)
        try:
            return Store(engine).spool_put(
                to_account, "messages", f"{dev.account}/{dev.device_id}", wire, int(time.time())
            )
        finally:
            engine.dispose()


def _wire(
    dev: Device,
    to: str,
    text: str,
    *,
    group: Group | None = None,
    sealed_to: Any = None,
    key_name: str = "messages",
    body: bytes | None = None,
    message_id: str | None = None,
) -> bytes:
    """An envelope signed by ``dev`` the way the adapter makes them (tests bend one part)."""
    me = dev.address
    mk, mid, now = random_bytes(32), message_id or new_message_id(), int(time.time())
    sealed = seal_to_key(sealed_to, key_name, mk)
    ct = (
        body
        if body is not None
        else seal_body(mk, text, body_ad(mid, me, dev.device_id, now, group))
    )
    return make_envelope(
        dev.keys.signing,
        message_id=mid,
        sender=me,
        device=dev.device_id,
        to=to,
        time=now,
        group=group,
        sealed_key=sealed,
        body=ct,
    )


def test_direct_message_both_devices_then_removed_device(make_account: Any) -> None:
    alice, bob = make_account("alice"), make_account("bob")
    phone = bob.join("phone")
    alice.admin.run("msg", "send", bob.name, "hello bob")
    alice.admin.run("msg", "send", _addr(bob), input="second line\n")

    for home in (bob.admin, phone):
        msgs = _inbox_json(home)
        assert [(m["from"], m["text"], m["verified"]) for m in msgs] == [
            (_addr(alice), "hello bob", True),
            (_addr(alice), "second line", True),
        ]
        assert "group" not in msgs[0] and msgs[0]["time"] > 0
    text = bob.admin.run("msg", "inbox").stdout
    assert f"{_addr(alice)} (verified): hello bob" in text

    first = _inbox_json(phone)[0]["id"]
    assert phone.json("msg", "read", first, "--json")["text"] == "hello bob"
    assert "hello bob" in phone.run("msg", "read", first).stdout

    bob.admin.run("device", "remove", "phone")
    alice.admin.run("msg", "send", bob.name, "after the removal")
    refused = phone.run("msg", "inbox", "--json", check=False)
    assert refused.returncode == 1 and "removed" in refused.stderr
    assert "after the removal" not in refused.stdout
    assert [m["text"] for m in _inbox_json(bob.admin)][-1] == "after the removal"

    # rm deletes the local copy and the spool entry
    laptop = _device(bob.admin)
    before = laptop.client.get(path("accounts", bob.name, "spool", "messages"))["messages"]
    bob.admin.run("msg", "rm", _inbox_json(bob.admin)[0]["id"])
    after = laptop.client.get(path("accounts", bob.name, "spool", "messages"))["messages"]
    laptop.close()
    assert len(after) == len(before) - 1
    assert [m["text"] for m in _inbox_json(bob.admin)] == ["second line", "after the removal"]
    missing = bob.admin.run("msg", "read", "999", check=False)
    assert missing.returncode == 1 and "no message" in missing.stderr


def test_group_members_read_and_removed_member_is_refused(make_account: Any) -> None:
    carol, alice, bob = make_account("carol"), make_account("alice"), make_account("bob")
    carol.admin.run("msg", "group", "create", "team")
    carol.admin.run("msg", "group", "add", "team", alice.name)
    carol.admin.run("msg", "group", "add", "team", _addr(bob))
    [row] = carol.admin.json("msg", "group", "list", "--json")
    assert row["name"] == "team" and set(row["members"]) == {_addr(carol), _addr(alice), _addr(bob)}
    gid = row["id"]  # the group key is messages/group/GID: the name is in no public place
    assert len(gid) == 32 and "team" not in gid

    carol.admin.run("msg", "group", "send", "team", "hello team")
    team = f"team@{_addr(carol)}"
    for home in (alice.admin, bob.admin, carol.admin):
        [m] = _inbox_json(home)
        assert (m["from"], m["text"], m["verified"], m["group"]) == (
            _addr(carol),
            "hello team",
            True,
            team,
        )

    # a member sends to the group too (member list from the owner's service)
    bob.admin.run("msg", "group", "send", f"team@{carol.name}", "bob here")
    assert [m["text"] for m in _inbox_json(alice.admin)] == ["hello team", "bob here"]

    carol.admin.run("msg", "group", "remove", "team", bob.name)
    carol.admin.run("msg", "group", "send", "team", "after bob left")
    assert [m["text"] for m in _inbox_json(alice.admin)][-1] == "after bob left"
    assert "after bob left" not in json.dumps(_inbox_json(bob.admin))  # not delivered

    # Even if a copy reaches bob (a sender with a stale member list, a hostile service),
    # the owner's service refuses bob the re-encryption: refused, no text.
    owner = _device(carol.admin)
    group = Group(_addr(carol), gid)
    _post(
        owner,
        bob.name,
        _wire(
            owner, _addr(bob), "leaked?", group=group, sealed_to=owner.chain(), key_name=group.key
        ),
    )
    owner.close()
    last = _inbox_json(bob.admin)[-1]
    # bob no longer reads the group's name either: the id is all he is shown
    assert (last["verified"], last["text"], last["group"]) == (False, None, f"{gid}@{_addr(carol)}")
    assert "no grant" in last["refused"]
    refused = bob.admin.run("msg", "group", "send", f"team@{carol.name}", "x", check=False)
    assert refused.returncode == 1 and "no group 'team'" in refused.stderr
    by_id = bob.admin.run("msg", "group", "send", f"{gid}@{carol.name}", "x", check=False)
    assert by_id.returncode == 1 and "not a member" in by_id.stderr


def test_bad_entries_are_refused_with_a_reason_never_shown_as_text(make_account: Any) -> None:
    alice, bob, mallory = make_account("alice"), make_account("bob"), make_account("mallory")
    a, m = _device(alice.admin), _device(mallory.admin)
    bob_chain = a.peer_chain(bob.name)
    to_bob = _addr(bob)

    # 1. forged: mallory's device signs an envelope that claims alice's device
    forged = json.loads(_wire(m, to_bob, "forged text", sealed_to=bob_chain))
    forged.update({"signer": f"{a.address}/{a.device_id}"})
    _post(m, bob.name, canonical_json(forged))
    # 2. for another account: alice signs for carol, and it lands in bob's spool
    _post(a, bob.name, _wire(a, f"carol@{to_bob.split('@')[1]}", "not yours", sealed_to=bob_chain))
    # 3. replayed: the same signed bytes twice
    genuine = _wire(a, to_bob, "genuine", sealed_to=bob_chain)
    _post(a, bob.name, genuine)
    _post(a, bob.name, genuine)
    # 4. altered ciphertext after signing, 5. truncated
    outer = json.loads(genuine)
    env = bytearray(b64d(outer["body"]))
    env[-10] ^= 1
    outer["body"] = b64e(bytes(env))
    _post(a, bob.name, canonical_json(outer))
    _post(a, bob.name, genuine[: len(genuine) // 2])
    # 6. properly signed but the body does not open (truncated before signing)
    _post(a, bob.name, _wire(a, to_bob, "", sealed_to=bob_chain, body=b"\x00" * 20))
    # 7. genuine bytes posted by mallory's device: not the signer's
    _post(m, bob.name, _wire(a, to_bob, "relayed", sealed_to=bob_chain))
    # 8. message format 1 (left in the spool from before the upgrade; the service's route
    #    refuses it now): signed by alice's device the old way, refused with a clear line
    old_inner = canonical_json(
        {
            "v": 1,
            "id": new_message_id(),
            "from": a.address,
            "device": a.device_id,
            "to": to_bob,
            "time": int(time.time()),
            "group": None,
            "key": b64e(seal_to_key(bob_chain, "messages", random_bytes(32))),
            "body": b64e(b"\x00" * 40),
        }
    )
    old = canonical_json(
        {
            "v": 1,
            "from": a.address,
            "device": a.device_id,
            "envelope": b64e(old_inner),
            "sig": b64e(a.keys.signing.sign("keystead/v1/messaging/envelope", old_inner)),
        }
    )
    with pytest.raises(FormatError, match="format 1"):
        a.client.post(path("messaging", "direct", bob.name), {"body": b64e(old)})
    _post(a, bob.name, old)
    a.close()
    m.close()

    msgs = _inbox_json(bob.admin)
    reasons = [x.get("refused") for x in msgs]
    assert reasons == [
        _inbox.FORGED,
        _inbox.NOT_FOR_ME,
        None,
        _inbox.REPLAY,
        _inbox.FORGED,
        _inbox.MALFORMED,
        _inbox.UNDECRYPTABLE,
        _inbox.WRONG_POSTER,
        OLD_FORMAT,
    ]
    assert [x["text"] for x in msgs] == [None, None, "genuine"] + [None] * 6
    assert [x["verified"] for x in msgs] == [False, False, True] + [False] * 6
    shown = bob.admin.run("msg", "inbox").stdout
    for secret in ("forged text", "not yours", "relayed"):
        assert secret not in shown
    assert shown.count("REFUSED") == 8
    assert "format 1" in shown
    # a replay stays refused after the original is deleted
    bob.admin.run("msg", "rm", msgs[2]["id"])
    again = _device(alice.admin)
    _post(again, bob.name, genuine)
    again.close()
    assert _inbox_json(bob.admin)[-1]["refused"] == _inbox.REPLAY


def test_inbox_wait_receives_a_message_sent_meanwhile(make_account: Any) -> None:
    alice, bob = make_account("alice"), make_account("bob")
    bob.admin.json("msg", "inbox", "--json")  # nothing yet
    started = time.monotonic()
    proc = bob.admin.spawn("msg", "inbox", "--json", "--wait", "30")
    time.sleep(1.5)
    alice.admin.run("msg", "send", bob.name, "while you waited")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert [m["text"] for m in json.loads(out)] == ["while you waited"]
    assert time.monotonic() - started < 25


def test_errors_are_one_line(make_account: Any) -> None:
    alice = make_account("alice")
    for args in (
        ("msg", "send", "nobody-here", "x"),
        ("msg", "send", "Bad Name", "x"),
        ("msg", "group", "send", "nogroup", "x"),
        ("msg", "read", "abc"),
        ("msg", "send", alice.name, ""),
    ):
        proc = alice.admin.run(*args, check=False)
        assert proc.returncode == 1, args
        assert proc.stderr.startswith("keystead: ") and proc.stderr.count("\n") == 1, proc.stderr


def test_a_member_accounts_device_without_the_messages_scope_opens_no_group_key(
    make_account: Any,
) -> None:
    """Bob's account is in carol's group, but bob's ssh-only device asks carol's service to
    re-encrypt a group message key (what its keystore lets it try): refused for the scope,
    while bob's device with the scope opens the same sealed key."""
    from keystead.core import Forbidden, open_sealed_to_key

    carol, bob = make_account("carol"), make_account("bob")
    carol.admin.run("msg", "group", "create", "ops")
    carol.admin.run("msg", "group", "add", "ops", bob.name)
    [row] = carol.admin.json("msg", "group", "list", "--json")
    group = Group(_addr(carol), row["id"])
    sshbox = bob.join("sshbox", scopes=["ssh"])
    owner = _device(carol.admin)
    sealed = seal_to_key(owner.chain(), group.key, b"k" * 32)
    owner.close()
    for home, allowed in ((sshbox, False), (bob.admin, True)):
        dev = _device(home)
        try:
            carol_chain = dev.peer_chain(carol.name)
            if allowed:
                assert open_sealed_to_key(dev, carol_chain, group.key, [sealed]) == [b"k" * 32]
            else:
                with pytest.raises(Forbidden, match="no grant"):
                    open_sealed_to_key(dev, carol_chain, group.key, [sealed])
        finally:
            dev.close()
    from keystead.core.audit import read_audit

    owner = _device(carol.admin)
    try:  # the owner's service says why: the grant is bob's account's, the scope is missing
        records = read_audit(owner, prefix=group.key).records
    finally:
        owner.close()
    assert [r.reason for r in records] == ["no messages scope", ""]
