"""Attacker tests: who may post into an account's ``confirm`` channel.

Only the service writes prompt rows (for an allowed relying party, or for the account's own
device through ``/v1/confirm``). A device of another account - holding only its own keys -
cannot post into alice's channel, forged envelope or junk; nor can alice's own device go
around the confirm routes. A junk row that is already in the spool (written before posters
were enforced) is skipped by the listing instead of hiding every real prompt.
"""

from __future__ import annotations

import pytest
from confirm_harness import finish, make_world, opened, rp_request, wait_for_prompt
from keystead.adapters.second_factor._wire import Envelope
from keystead.core import Forbidden, b64e
from keystead.core.client import path
from keystead.core.service import open_context


@pytest.fixture
def world(make_account, service):
    return make_world(make_account, service)


def _forged_envelope() -> bytes:
    """A well-formed envelope naming a real relying party, as an attacker would write it."""
    return Envelope("ab" * 16, "bank.example", 4_000_000_000, b"\x00" * 200).to_bytes()


def test_another_accounts_device_cannot_post_into_the_confirm_channel(world, make_account):
    mallory = make_account("mallory")
    alice = world.account.name
    with opened(mallory.admin) as dev:
        for body in (_forged_envelope(), b"junk"):
            with pytest.raises(Forbidden):
                dev.client.post(path("accounts", alice, "spool", "confirm"), {"body": b64e(body)})
        # nor a channel that no installed adapter declares
        with pytest.raises(Forbidden):
            dev.client.post(path("accounts", alice, "spool", "anything"), {"body": b64e(b"x")})
    # alice's own device may not go around the confirm routes either
    with opened(world.account.admin) as own:
        with pytest.raises(Forbidden):
            own.client.post(
                path("accounts", alice, "spool", "confirm"), {"body": b64e(_forged_envelope())}
            )
    # and alice's real flow still works, with nothing forged in her list
    assert world.phone.json("confirm", "list", "--json") == []
    rp = rp_request(world, "--wait", "30", "--no-number-matching", message="Real request")
    prompt = wait_for_prompt(world.phone, "Real request")
    assert prompt["rp"] == "bank.example"
    world.phone.run("confirm", "approve", prompt["id"])
    code, out, _ = finish(rp)
    assert (code, out) == (0, "approved\n")


def test_a_junk_row_already_in_the_spool_does_not_hide_real_prompts(world, service):
    """Rows written straight into the database (as an old service let any device do)."""
    alice = world.account.name
    store = open_context(service.database_url).store
    store.spool_put(alice, "confirm", "mallory/dev", b"junk", 0, None)
    store.spool_put(alice, "confirm", "mallory/dev", _forged_envelope(), 0, None)
    store.spool_put(alice, "confirm", "confirm:bank.example", b"{not json", 0, None)
    rp = rp_request(world, "--wait", "30", "--no-number-matching", message="Behind the junk")
    prompt = wait_for_prompt(world.phone, "Behind the junk")
    listing = world.phone.json("confirm", "list", "--json")
    assert [p["message"] for p in listing] == ["Behind the junk"]  # the forged one is not shown
    world.phone.run("confirm", "deny", prompt["id"])
    code, out, _ = finish(rp)
    assert (code, out) == (1, "denied\n")
