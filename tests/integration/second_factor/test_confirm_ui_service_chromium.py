"""``keystead confirm ui`` over the real service, in real headless Chromium: a prompt a relying
party sends shows on the page, and a click on Approve gives the RP a verified approval."""

from __future__ import annotations

import pytest
from confirm_harness import finish, make_world, rp_request
from playwright.sync_api import expect

pytestmark = pytest.mark.slow


@pytest.fixture
def ui_page(make_account, service, browser):
    world = make_world(make_account, service)
    ui = world.phone.spawn("confirm", "ui", "--port", "0")
    try:
        assert ui.stdout is not None
        line = ui.stdout.readline()
        assert line.startswith("confirmation page: "), line + ui.stderr.read()
        context = browser.new_context()
        page = context.new_page()
        page.goto(line.split(": ", 1)[1].strip())
        yield world, page
        context.close()
    finally:
        ui.terminate()
        ui.communicate(timeout=10)


def test_a_click_on_approve_is_a_verified_approval_at_the_rp(ui_page):
    world, page = ui_page
    expect(page.locator("#empty")).to_be_visible()
    rp = rp_request(world, "--wait", "60", "--number-matching", message="Log in from Berlin?")
    assert rp.stdout is not None
    number = int(rp.stdout.readline().split(": ")[1])
    card = page.locator("article.prompt", has_text="Log in from Berlin?")
    expect(card.locator("h2")).to_have_text("bank.example", timeout=15_000)
    card.get_by_label(str(number)).check()
    card.get_by_role("button", name="Approve").click()
    expect(page.locator("#status")).to_have_text("Approved: bank.example")
    code, stdout, _ = finish(rp)
    assert (code, stdout) == (0, "approved\n")


def test_deny_and_report_from_the_page(ui_page):
    world, page = ui_page
    rp = rp_request(world, "--wait", "60", "--no-number-matching", message="Was this you?")
    card = page.locator("article.prompt", has_text="Was this you?")
    card.get_by_role("button", name="Deny and report as not me").click(timeout=15_000)
    expect(page.locator("#status")).to_have_text("Denied and reported: bank.example")
    code, stdout, stderr = finish(rp)
    assert (code, stdout) == (3, "denied\n") and "reported" in stderr
