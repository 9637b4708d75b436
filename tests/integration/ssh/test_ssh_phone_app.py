"""``keystead ssh agent --confirm`` waiting for the phone web app: a real sshd login through the
laptop's agent waits until the phone app (Chromium, Pixel 7 emulation) taps the number the
agent printed; a denial on the phone refuses the login."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from playwright.sync_api import Page, expect, sync_playwright
from ssh_harness import Sshd
from test_ssh_keystead import Agent, _shown_number, agents, ssh_in_background

__all__ = ["agents"]  # the fixture, imported to be used here

pytestmark = pytest.mark.slow
PASSPHRASE = "phone passphrase 4 ssh"


@pytest.fixture
def acct(make_account: Callable[..., Any]) -> Any:
    return make_account("sshphone")


@pytest.fixture
def authorized_keys_command(acct: Any) -> str:
    cli = f"{sys.executable} -m keystead.core.cli"
    return (
        f"exec env -i PATH=/usr/bin:/bin {cli} "
        f"ssh authorized-keys {acct.name} --server {acct.service.url}"
    )


@pytest.fixture
def phone_page(acct: Any) -> Iterator[Page]:
    """The phone app, joined to the account with the confirm scope only."""
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium",
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        pixel = dict(p.devices["Pixel 7"])
        pixel.pop("default_browser_type", None)
        page = browser.new_context(**pixel).new_page()
        page.set_default_timeout(20_000)
        url = (
            acct.admin.run("device", "invite", "--no-qr").stdout.split("invite: ", 1)[1].split()[0]
        )
        page.goto(url)
        page.get_by_label("Passphrase", exact=True).fill(PASSPHRASE)
        page.get_by_label("Repeat passphrase").fill(PASSPHRASE)
        page.get_by_role("button", name="Join").tap()
        code = page.get_by_label("Pairing code").inner_text(timeout=30_000).strip()
        acct.admin.run("device", "approve", code, "--scopes", "confirm", "--yes")
        expect(page.get_by_text("No requests are waiting.")).to_be_visible(timeout=30_000)
        yield page
        browser.close()


def test_an_ssh_login_waits_for_the_phone_app(
    acct: Any, sshd: Sshd, agents: Callable[..., Agent], phone_page: Page
) -> None:
    acct.admin.run(
        "ssh", "known-hosts", "add", "127.0.0.1", "--port", str(sshd.port), sshd.host_key.line()
    )
    agent = agents(acct.admin, "--confirm", "--confirm-wait", "30")
    login = ssh_in_background(sshd, agent, "echo", "approved")
    card = phone_page.get_by_role("listitem", name="Request from device:laptop")
    expect(card).to_be_visible()
    expect(card).to_contain_text("'root'")
    expect(card).to_contain_text(f"[127.0.0.1]:{sshd.port}")
    number = _shown_number(agent)
    card.get_by_role("button", name=f"Approve with {number}", exact=True).tap()
    out, err = login.communicate(timeout=30)
    assert (login.returncode, out) == (0, "approved\n"), err
    # the next login asks again, and Deny on the phone refuses it
    login = ssh_in_background(sshd, agent, "true")
    expect(card).to_have_count(1)
    card.get_by_role("button", name="Deny").tap()
    login.communicate(timeout=30)
    assert login.returncode == 255
