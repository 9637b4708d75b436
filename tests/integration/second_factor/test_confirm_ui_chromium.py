"""The confirmation page in real headless Chromium: a person's clicks become verified answers,
and another local page cannot click for them."""

import http.server
import threading
import time

import pytest
from keystead.adapters.second_factor import (
    Decision,
    InMemoryPromptSource,
    RelyingParty,
    verify_answer,
)
from keystead.adapters.second_factor.ui import UiServer
from keystead.core.crypto import SigningKey
from playwright.sync_api import expect

pytestmark = pytest.mark.slow

KEY = SigningKey.generate()
LIVE = {"phone": KEY.verify_key}
BANK = RelyingParty("bank.example", lifetime=300)


@pytest.fixture
def page(browser):
    context = browser.new_context()
    yield context.new_page()
    context.close()


@pytest.fixture
def source():
    return InMemoryPromptSource("phone", KEY)


@pytest.fixture
def server(source):
    with UiServer(source) as running:
        yield running


def add_prompt(source, message="Log in to bank.example from Berlin?", rp=BANK):
    prompt = rp.create_prompt(message, int(time.time()))
    source.add(prompt.to_bytes())
    return prompt


def check(source, prompt, rp_name="bank.example"):
    answer = source.answers[prompt.request_id]
    return verify_answer(answer, prompt.to_bytes(), rp_name, int(time.time()), LIVE, set())


def test_approve_with_the_number_shown(page, server, source):
    prompt = add_prompt(source)
    page.goto(server.open_url)
    card = page.locator(f'article[data-id="{prompt.request_id}"]')
    expect(card.locator("h2")).to_have_text("bank.example")
    expect(card.locator(".message")).to_have_text("Log in to bank.example from Berlin?")
    expect(card.locator(".expiry")).to_contain_text("Expires in")
    labels = card.locator(".choices label")
    expect(labels).to_have_text([f" {n}" for n in sorted(prompt.choices)])
    approve = card.get_by_role("button", name="Approve")
    expect(approve).to_be_disabled()  # no approval without looking at the RP's number

    card.get_by_label(str(prompt.number)).check()
    approve.click()
    expect(page.locator("#status")).to_have_text("Approved: bank.example")
    expect(card).to_have_count(0)

    result = check(source, prompt)
    assert result.decision is Decision.APPROVE and result.number == prompt.number


def test_picking_a_decoy_fails_verification(page, server, source):
    prompt = add_prompt(source)
    decoy = next(n for n in prompt.choices if n != prompt.number)
    page.goto(server.open_url)
    card = page.locator(f'article[data-id="{prompt.request_id}"]')
    card.get_by_label(str(decoy)).check()
    card.get_by_role("button", name="Approve").click()
    expect(page.locator("#status")).to_have_text("Approved: bank.example")
    from keystead.adapters.second_factor import WrongNumber

    with pytest.raises(WrongNumber):
        check(source, prompt)


def test_deny_and_report_as_not_me(page, server, source):
    first = add_prompt(source, "First")
    second = add_prompt(source, "Second")
    page.goto(server.open_url)
    page.locator(f'article[data-id="{first.request_id}"]').get_by_role(
        "button", name="Deny and report as not me"
    ).click()
    page.locator(f'article[data-id="{second.request_id}"]').get_by_role(
        "button", name="Deny", exact=True
    ).click()
    expect(page.locator("#empty")).to_be_visible()
    assert check(source, first).decision is Decision.REPORT
    assert check(source, second).decision is Decision.DENY


def test_new_prompts_appear_without_reload_and_text_stays_text(page, server, source):
    page.goto(server.open_url)
    expect(page.locator("#empty")).to_be_visible()
    hostile = "<img src=x onerror=\"document.title='pwned'\">"
    prompt = add_prompt(source, hostile, RelyingParty("shop.example", number_matching=False))
    card = page.locator(f'article[data-id="{prompt.request_id}"]')
    expect(card.locator(".message")).to_have_text(hostile, timeout=10_000)
    assert page.locator("img").count() == 0 and page.title() != "pwned"
    card.get_by_role("button", name="Approve").click()
    expect(card).to_have_count(0)
    assert check(source, prompt, "shop.example").decision is Decision.APPROVE


ATTACKER_PAGE = """<!doctype html><html><body>
<iframe id="frame" src="{ui}"></iframe>
<form id="f" method="POST" action="{ui}api/prompts/{rid}/approve"
  enctype="text/plain" target="sink">
<input name='{{"number":{number},"x":"' value='"}}'></form>
<iframe name="sink"></iframe>
<script>
window.results = {{}};
fetch("{ui}api/prompts/{rid}/approve", {{method: "POST", mode: "no-cors",
  headers: {{"Content-Type": "text/plain"}}, body: '{{"number":{number}}}'}})
  .then(() => window.results.nocors = "sent", e => window.results.nocors = "error");
fetch("{ui}", {{mode: "cors"}}).then(r => r.text()).then(
  t => window.results.read = t, e => window.results.read = "blocked");
fetch("{ui}api/prompts/{rid}/approve", {{method: "POST", mode: "cors",
  headers: {{"Content-Type": "application/json", "X-Keystead-Token": "guess"}},
  body: '{{"number":{number}}}'}}).then(r => window.results.cors = r.status,
  e => window.results.cors = "blocked");
document.getElementById("f").submit();
</script></body></html>"""


@pytest.fixture
def attacker_site():
    pages: dict[str, bytes] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = pages.get(self.path, b"")
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield pages, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def test_another_local_page_cannot_answer_or_read_the_token(page, server, source, attacker_site):
    pages, origin = attacker_site
    prompt = add_prompt(source)
    pages["/"] = ATTACKER_PAGE.format(
        ui=server.url, rid=prompt.request_id, number=prompt.number
    ).encode()
    page.goto(origin + "/")
    page.wait_for_function("Object.keys(window.results).length === 3", timeout=10_000)
    results = page.evaluate("window.results")
    assert results["read"] == "blocked"  # the page (and its token) is not readable cross-origin
    assert results["cors"] == "blocked"  # the preflight gets no CORS approval
    page.wait_for_timeout(500)  # let the form post land
    assert source.answers == {}
    assert [p.request_id for p in source.list_pending()] == [prompt.request_id]
    framed = page.frame_locator("#frame").locator("body")
    expect(framed).not_to_contain_text("Keystead")  # frame-ancestors 'none': not framed
