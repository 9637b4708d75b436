"""Confirmation prompts end to end: a relying party on the real CLI, a real service process,
and the account's devices answering through the real CLI (and the Python API)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import time

import pytest
from confirm_harness import (
    CLI,
    World,
    finish,
    make_world,
    opened,
    rp_request,
    wait_for_prompt,
)
from keystead.adapters.second_factor import (
    AnswerReplayed,
    Decision,
    DeviceNotLive,
    DevicePromptSource,
    RelyingPartyClient,
    RequestExpired,
    WrongRelyingParty,
    WrongRequest,
    answer_prompt,
    request_confirmation,
)
from keystead.core import (
    Conflict,
    DeviceRemoved,
    Forbidden,
    FormatError,
    NotFound,
    UnsupportedVersion,
    b64d,
    b64e,
    canonical_json,
    seal_to_key,
)

_WORLDS: dict[str, object] = {}


@pytest.fixture
def world(make_account, service):
    """One account (admin laptop + member phone + an allowed RP) shared by this module."""
    if service.url not in _WORLDS:
        _WORLDS[service.url] = make_world(make_account, service)
    return _WORLDS[service.url]


def test_phone_approves_and_the_rp_sees_a_verified_approval(world):
    rp = rp_request(world, "--wait", "30", "--no-number-matching", message="Approve me")
    prompt = wait_for_prompt(world.phone, "Approve me")
    assert prompt["rp"] == "bank.example" and prompt["choices"] == []
    assert set(prompt) == {"id", "rp", "message", "created", "expires", "choices"}
    out = world.phone.run("confirm", "approve", prompt["id"]).stdout
    assert out.strip() == "approved: bank.example"
    code, stdout, _ = finish(rp)
    assert (code, stdout) == (0, "approved\n")
    # answered prompts leave every device's list, and a second answer is refused
    admin = world.account.admin
    assert all(p["id"] != prompt["id"] for p in admin.json("confirm", "list", "--json"))
    again = world.account.admin.run("confirm", "deny", prompt["id"], check=False)
    assert again.returncode == 1 and "no pending confirmation request" in again.stderr


def test_deny(world):
    rp = rp_request(world, "--wait", "30", "--no-number-matching", message="Deny me")
    world.phone.run("confirm", "deny", wait_for_prompt(world.phone, "Deny me")["id"])
    code, stdout, _ = finish(rp)
    assert code == 1 and stdout == "denied\n"


def test_report_as_not_me_is_recorded_and_the_rp_sees_it(world):
    before = {r["name"]: r["reports"] for r in world.account.admin.json("confirm", "rps", "--json")}
    rp = rp_request(world, "--wait", "30", "--no-number-matching", message="Not me")
    world.phone.run("confirm", "deny", wait_for_prompt(world.phone, "Not me")["id"], "--report")
    code, stdout, stderr = finish(rp)
    assert code == 3 and stdout == "denied\n" and "reported" in stderr
    after = {r["name"]: r["reports"] for r in world.account.admin.json("confirm", "rps", "--json")}
    assert after["bank.example"] == before["bank.example"] + 1


def test_nobody_answers_expired(world):
    rp = rp_request(world, "--wait", "2", "--no-number-matching", message="Too late")
    code, stdout, _ = finish(rp)
    assert code == 2 and stdout == "expired\n"
    assert all(p["message"] != "Too late" for p in world.phone.json("confirm", "list", "--json"))


def _number(rp: subprocess.Popen[str]) -> int:
    assert rp.stdout is not None
    line = rp.stdout.readline()
    assert line.startswith("number: "), line
    return int(line.split(": ")[1])


def test_number_matching_right_number(world):
    rp = rp_request(world, "--wait", "30", message="Match right")  # on by default
    number = _number(rp)
    prompt = wait_for_prompt(world.phone, "Match right")
    assert number in prompt["choices"] and len(prompt["choices"]) == 9
    world.phone.run("confirm", "approve", prompt["id"], "--number", str(number))
    code, stdout, _ = finish(rp)
    assert (code, stdout) == (0, "approved\n")


def test_number_matching_wrong_number_is_not_an_approval(world):
    rp = rp_request(world, "--wait", "30", message="Match wrong")
    number = _number(rp)
    prompt = wait_for_prompt(world.phone, "Match wrong")
    decoy = next(n for n in prompt["choices"] if n != number)
    missing = world.phone.run("confirm", "approve", prompt["id"], check=False)
    assert missing.returncode == 1 and "--number" in missing.stderr  # no blind approval
    world.phone.run("confirm", "approve", prompt["id"], "--number", str(decoy))
    code, stdout, stderr = finish(rp)
    assert code == 4 and stdout == "denied\n" and "number" in stderr


def test_watch_asks_on_the_terminal(world):
    watcher = subprocess.Popen(
        [*CLI, "confirm", "watch", "--once"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=world.phone.env(),
    )
    try:
        time.sleep(1.0)  # let it start its long-poll (a prompt sent earlier is listed too)
        rp = rp_request(world, "--wait", "30", "--no-number-matching", message="Watch me")
        out, err = watcher.communicate("y\n", timeout=60)
        assert watcher.returncode == 0, err
        assert "bank.example asks: Watch me" in out and "approve: bank.example" in out
        code, stdout, _ = finish(rp)
        assert (code, stdout) == (0, "approved\n")
    finally:
        watcher.kill()


def test_rp_management_and_a_revoked_token(world):
    admin = world.account.admin
    token = admin.run("confirm", "allow", "shop.example").stdout.split("rp token: ")[1].strip()
    assert "shop.example" in [r["name"] for r in admin.json("confirm", "rps", "--json")]
    # only an admin device manages relying parties
    assert world.phone.run("confirm", "allow", "x.example", check=False).returncode == 1
    admin.run("confirm", "disallow", "shop.example")
    code, _, err = finish(rp_request(world, "--wait", "5", token=token))
    assert code == 1 and "unknown or revoked" in err
    forged = "bank.example:" + token.split(":")[1]  # a real secret under another RP's name
    code, _, err = finish(rp_request(world, "--wait", "5", token=forged))
    assert code == 1 and "unknown or revoked" in err


# ----------------------------------------------------------------- refusals, Python API level
def _client(world, token=None):
    return RelyingPartyClient(
        world.url, world.account.name, token or world.token, pins=world.rp_home / "rp-pins"
    )


def _answer(dev, pending, decision=Decision.APPROVE, number=None):
    return answer_prompt(
        pending.prompt_bytes,
        decision,
        number,
        device_id=dev.device_id,
        signing_key=dev.keys.signing,
        now=int(time.time()),
    )


def test_replayed_answers_are_refused(world):
    with _client(world) as rp, opened(world.phone) as phone:
        first = rp.start("Replay one", lifetime=60, number_matching=False)
        second = rp.start("Replay two", lifetime=60, number_matching=False)
        src = DevicePromptSource(phone)
        src.approve(first.request_id, None)
        answer = rp._request("GET", rp._url("requests", first.request_id, "answer"))["answer"]
        answer = b64d(answer)
        assert rp.verify(first, answer).approved
        with pytest.raises(AnswerReplayed):  # the same answer, twice to the RP
            rp.verify(first, answer)
        with pytest.raises(WrongRequest):  # an old answer for a new request
            rp.verify(second, answer)
        # and the service stores one answer per request: a second one is refused
        with pytest.raises(Conflict):
            phone.client.post(
                f"/confirm/{phone.account}/requests/{first.request_id}/answer",
                {"answer": b64e(answer)},
            )
        with pytest.raises(FormatError):  # nor request 1's answer for request 2 (400)
            phone.client.post(
                f"/confirm/{phone.account}/requests/{second.request_id}/answer",
                {"answer": b64e(answer)},
            )


def _old_format_answer(dev, pending):
    """An answer as Keystead made it before the core signed envelope (format 1)."""
    body = canonical_json(
        {
            "v": 1,
            "type": "keystead/v1/confirm/answer-body",
            "id": pending.request_id,
            "prompt": b64e(hashlib.sha256(pending.prompt_bytes).digest()),
            "rp": pending.prompt.rp,
            "decision": "approve",
            "number": None,
            "at": int(time.time()),
            "device": dev.device_id,
        }
    )
    sig = dev.keys.signing.sign("keystead/v1/confirm/answer", body)
    return canonical_json({"v": 1, "device": dev.device_id, "body": b64e(body), "sig": b64e(sig)})


def test_old_format_and_foreign_signer_answers_are_refused(world):
    # A device (here the phone, live with the confirm scope) posts answers the service must
    # refuse: one of format 1, and a good envelope naming another device as its signer.
    with _client(world) as rp, opened(world.phone) as phone, opened(world.account.admin) as lap:
        pending = rp.start("Envelope check", lifetime=60, number_matching=False)
        old = _old_format_answer(phone, pending)
        with pytest.raises(UnsupportedVersion) as e:
            phone.client.post(
                f"/confirm/{phone.account}/requests/{pending.request_id}/answer",
                {"answer": b64e(old)},
            )
        assert "format 1" in str(e.value) and "upgrade" in str(e.value)
        with pytest.raises(UnsupportedVersion):  # nor does the RP count one
            rp.verify(pending, old)
        with pytest.raises(FormatError, match="signed by the device that sends it"):
            phone.client.post(
                f"/confirm/{phone.account}/requests/{pending.request_id}/answer",
                {"answer": b64e(_answer(lap, pending))},  # the admin laptop's answer
            )
        DevicePromptSource(phone).approve(pending.request_id, None)
        outcome = rp.wait(pending)
        assert outcome.approved and outcome.answer is not None
        assert outcome.answer.device_id == phone.device_id


def test_an_answer_for_a_different_prompt_is_refused(world):
    with _client(world) as rp, opened(world.phone) as phone:
        pending = rp.start("Original text", lifetime=60, number_matching=False)
        altered = type(pending)(
            pending.prompt, pending.prompt_bytes.replace(b"Original text", b"Other text")
        )
        with pytest.raises(WrongRequest):
            rp.verify(pending, _answer(phone, altered))


def test_another_rp_cannot_read_or_use_the_answer(world):
    admin = world.account.admin
    shop = admin.run("confirm", "allow", "shop2.example").stdout.split("rp token: ")[1].strip()
    with _client(world) as bank, _client(world, shop) as other, opened(world.phone) as phone:
        pending = bank.start("Bank only", lifetime=60, number_matching=False)
        DevicePromptSource(phone).approve(pending.request_id, None)
        with pytest.raises(NotFound):  # the service hands the answer only to its RP
            other._request("GET", other._url("requests", pending.request_id, "answer"))
        answer = _answer(phone, pending)
        with pytest.raises(WrongRelyingParty):  # and another RP cannot verify it as its own
            other.verify(pending, answer)


def test_an_expired_request_cannot_be_answered_or_verified(world):
    with _client(world) as rp, opened(world.phone) as phone:
        # long enough for a slow machine to fetch it while it is live (1 s was not, in CI)
        pending = rp.start("Short lived", lifetime=5, number_matching=False)
        src = DevicePromptSource(phone)
        received = src.find(pending.request_id)
        answer = _answer(phone, pending)
        time.sleep(max(0.0, pending.prompt.expires - time.time()) + 1.1)
        with pytest.raises(RequestExpired):
            src.answer(received.prompt.request_id, Decision.APPROVE, None)
        with pytest.raises(FormatError) as late:  # the service refuses a late answer too
            phone.client.post(
                f"/confirm/{phone.account}/requests/{pending.request_id}/answer",
                {"answer": b64e(answer)},
            )
        assert "expired" in str(late.value)
        with pytest.raises(RequestExpired):
            rp.verify(pending, answer)
        assert rp.wait(pending).status == "expired"


def test_a_device_without_the_confirm_scope_cannot_read_or_answer(world):
    tv = world.account.join("tv", scopes=["totp"])
    with _client(world) as rp, opened(tv) as dev:
        pending = rp.start("Scope check", lifetime=60, number_matching=False)
        with pytest.raises(Forbidden):
            DevicePromptSource(dev).received()
        with pytest.raises(Forbidden):
            dev.client.post(
                f"/confirm/{dev.account}/requests/{pending.request_id}/answer",
                {"answer": b64e(_answer(dev, pending))},
            )
        with pytest.raises(DeviceNotLive):  # and the RP would not count its answer anyway
            rp.verify(pending, _answer(dev, pending))


def test_a_removed_devices_answer_is_refused(make_account, service):
    """Own account: removing a device changes the chain for everyone else in the module."""
    acct = make_account("removed")
    tablet = acct.join("tablet", scopes=["confirm"])
    token = acct.admin.run("confirm", "allow", "bank.example").stdout.split(": ")[1].strip()
    rp_home = acct.tmp / f"{acct.name}-rp"
    with (
        RelyingPartyClient(service.url, acct.name, token, pins=rp_home / "rp-pins") as rp,
        opened(tablet) as dev,
    ):
        pending = rp.start("Before removal", lifetime=60, number_matching=False)
        src = DevicePromptSource(dev)
        src.find(pending.request_id)
        signed_before = _answer(dev, pending)
        acct.admin.run("device", "remove", "tablet")
        with pytest.raises(DeviceRemoved):  # the service no longer takes its answers
            src.approve(pending.request_id, None)
        with pytest.raises(DeviceNotLive):  # nor does the RP, even if one reached it
            rp.verify(pending, signed_before)
        # The RP's cached chain predates the removal: a prompt sealed with it (to the epoch
        # the removed tablet can read) is refused with 409, and start() seals it again.
        stale = seal_to_key(rp._sealing_chain(), "confirm", b"sealed before the refresh")
        with pytest.raises(Conflict, match="epoch"):
            rp._request(
                "POST",
                rp._url("requests"),
                {"v": 1, "id": "0" * 32, "expires": int(time.time()) + 60, "sealed": b64e(stale)},
            )
        resealed = rp.start("After removal, sealed again", lifetime=60)
        assert acct.admin.json("confirm", "list", "--json")[-1]["id"] == resealed.request_id
    after = World(acct, tablet, token, service.url, rp_home)
    code, out, _ = finish(
        rp_request(after, "--wait", "2", "--no-number-matching", message="After removal")
    )
    assert (code, out) == (2, "expired\n")


def test_a_device_asks_its_own_account(world):
    """What ``keystead ssh agent --confirm`` calls: no RP token, RP name ``device:NAME``."""
    import threading

    result: list[bool] = []
    shown: list[int] = []  # number matching is on: the asking side shows the number
    with opened(world.account.admin) as laptop:
        t = threading.Thread(
            target=lambda: result.append(
                request_confirmation(
                    laptop, "Use SSH key for git@example.com?", wait=30, show_number=shown.append
                )
            )
        )
        t.start()
        prompt = wait_for_prompt(world.phone, "Use SSH key for git@example.com?")
        assert prompt["rp"] == "device:laptop" and len(prompt["choices"]) == 9
        world.phone.run("confirm", "approve", prompt["id"], "--number", str(shown[0]))
        t.join(60)
    assert result == [True]


def test_bad_input_is_a_4xx_json_error(world):
    import httpx

    base = f"{world.url}/v1/confirm/{world.account.name}"
    v2 = {"keystead-protocol": "2"}
    auth = {"authorization": f"Bearer {world.token}", **v2}
    for body in [
        b"{",
        b"[]",
        json.dumps({"v": 1}).encode(),
        json.dumps({"v": 1, "id": "x", "expires": 1, "sealed": ""}).encode(),
    ]:
        r = httpx.post(base + "/requests", content=body, headers=auth)
        assert 400 <= r.status_code < 500 and "error" in r.json(), (body, r.text)
    r = httpx.get(base + "/requests/nope/answer", headers=auth)
    assert r.status_code == 400 and r.json()["error"] == "bad_request"
    r = httpx.get(base + "/rps", headers=v2)
    assert r.status_code == 403
    r = httpx.post(base + "/requests", json={}, headers={"authorization": "Basic abc", **v2})
    assert r.status_code == 403
    # A client of protocol version 1 (no header) is told both versions, in one line.
    r = httpx.get(base + "/rps")
    assert r.status_code == 400 and r.json()["error"] == "unsupported_version"
    assert "version 2" in r.json()["message"] and "version 1" in r.json()["message"]
