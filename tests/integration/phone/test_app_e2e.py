"""The phone web app end to end: Debian's Chromium with Playwright's phone emulation (Pixel 7:
viewport, touch, mobile user agent) against a real ``keystead serve`` serving ``/app/``.

The app joins the account through its invite link and is approved by the admin's CLI; a
relying party on the real CLI asks with number matching and the test taps the numbers; TOTP
codes are checked against ``oathtool``; a password added on the laptop shows up; the lost
connection resumes; and ``keystead device remove`` ends it all (IndexedDB empty).

Every screen is saved as a PNG: in ``$KEYSTEAD_PHONE_SCREENSHOTS`` when set, else in the test's
temporary folder; the paths are printed (``pytest -s`` or the captured log of a failure).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from keystead.core.testing import CLI, DeviceHome, ServiceProcess, unique
from playwright.sync_api import Browser, Page, Playwright, Route, expect, sync_playwright

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"  # 160 bits, base32
PHONE_PASSPHRASE = "phone passphrase 4 tests"


# Every record of every IndexedDB database of the app's origin.
IDB_RECORDS = """async () => {
  let n = 0;
  for (const { name } of await indexedDB.databases()) {
    const db = await new Promise((ok, ko) => {
      const r = indexedDB.open(name);
      r.onsuccess = () => ok(r.result);
      r.onerror = () => ko(r.error);
    });
    for (const store of db.objectStoreNames) {
      n += await new Promise((ok, ko) => {
        const r = db.transaction(store).objectStore(store).count();
        r.onsuccess = () => ok(r.result);
        r.onerror = () => ko(r.error);
      });
    }
    db.close();
  }
  return n;
}"""


@dataclass
class Phone:
    page: Page
    service: ServiceProcess
    account: str
    admin: DeviceHome
    token: str
    rp_home: Path
    shots: Path
    taken: list[Path] = field(default_factory=list)

    def shot(self, name: str) -> None:
        path = self.shots / f"{len(self.taken) + 1:02d}-{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        self.taken.append(path)
        print(f"screenshot: {path}")

    def rp(self, message: str, *args: str, wait: int = 30) -> subprocess.Popen[str]:
        """``keystead confirm request`` as a relying party runs it: no device, its pins only."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("KEYSTEAD_")}
        env["KEYSTEAD_HOME"] = str(self.rp_home)
        return subprocess.Popen(
            [
                *CLI,
                "confirm",
                "request",
                self.account,
                "--server",
                self.service.url,
                "--rp-token",
                self.token,
                "--message",
                message,
                "--wait",
                str(wait),
                *args,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )

    def card(self, message: str) -> Any:
        return self.page.get_by_role("listitem", name="Request from bank.example").filter(
            has_text=message
        )


def _number(rp: subprocess.Popen[str]) -> int:
    assert rp.stdout is not None
    line = rp.stdout.readline()
    assert line.startswith("number: "), line + (rp.stderr.read() if rp.stderr else "")
    return int(line.split(": ")[1])


def _finish(rp: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = rp.communicate(timeout=60)
    return rp.returncode, out, err


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    b = playwright.chromium.launch(
        executable_path="/usr/bin/chromium",
        headless=True,
        args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
    )
    yield b
    b.close()


@pytest.fixture(scope="module")
def phone(
    playwright: Playwright,
    browser: Browser,
    service: ServiceProcess,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Phone]:
    tmp = tmp_path_factory.mktemp("phone")
    shots = Path(os.environ.get("KEYSTEAD_PHONE_SCREENSHOTS") or tmp / "screens")
    shots.mkdir(parents=True, exist_ok=True)
    name = unique("phone")
    admin = DeviceHome(tmp / "laptop")
    admin.run("account", "create", name, "--server", service.url, "--device", "laptop")
    token = admin.run("confirm", "allow", "bank.example").stdout.split("rp token: ")[1].strip()
    pixel = dict(playwright.devices["Pixel 7"])  # viewport, touch, mobile user agent
    pixel.pop("default_browser_type", None)
    context = browser.new_context(**pixel)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=service.url)
    page = context.new_page()
    page.set_default_timeout(20_000)
    yield Phone(page, service, name, admin, token, tmp / "rp", shots)
    print(f"screenshots in {shots}")
    context.close()


def test_the_app_is_installable(phone: Phone) -> None:
    page = phone.page
    page.goto(phone.service.url + "/app/")
    manifest = page.evaluate(
        "async () => (await fetch(document.querySelector('link[rel=manifest]').href)).json()"
    )
    assert manifest["start_url"] == "/app/" and manifest["scope"] == "/app/"
    assert manifest["display"] == "standalone"
    sizes = {(i["sizes"], i.get("purpose", "any")) for i in manifest["icons"]}
    assert {("192x192", "any"), ("512x512", "any"), ("512x512", "maskable")} <= sizes
    for icon in manifest["icons"]:
        res = page.request.get(phone.service.url + "/app/" + icon["src"])
        assert res.ok and res.body()[:8] == b"\x89PNG\r\n\x1a\n"
    # the service worker takes control (the offline shell)
    page.wait_for_function(
        "navigator.serviceWorker.controller !== null || "
        "navigator.serviceWorker.ready.then(() => true)"
    )
    scope = page.evaluate("async () => (await navigator.serviceWorker.ready).scope")
    assert scope == phone.service.url + "/app/"
    # Chromium's own verdict: the manifest parses and nothing stops installing, except that a
    # Playwright context is an incognito profile
    cdp = page.context.new_cdp_session(page)
    assert cdp.send("Page.getAppManifest")["errors"] == []
    errors = cdp.send("Page.getInstallabilityErrors")["installabilityErrors"]
    assert {e["errorId"] for e in errors} <= {"in-incognito"}, errors
    cdp.detach()


def test_an_invite_with_another_account_key_is_refused_and_nothing_is_kept(phone: Phone) -> None:
    """A service (or a link) that swaps the account: the fingerprint in the invite does not
    match the account key served, so the app refuses before it makes or sends any key."""
    page = phone.page
    other = "SHA256:" + "A" * 43
    page.goto(f"{phone.service.url}/app/#" + urlencode({"join": phone.account, "fp": other}))
    page.get_by_label("Passphrase", exact=True).fill(PHONE_PASSPHRASE)
    page.get_by_label("Repeat passphrase").fill(PHONE_PASSPHRASE)
    sent: list[str] = []
    page.on("request", lambda r: sent.append(f"{r.method} {r.url}"))
    page.get_by_role("button", name="Join").tap()
    expect(page.get_by_role("alert")).to_contain_text(f"not the invite's {other}")
    phone.shot("join-refused")
    assert any("/chain" in r for r in sent)  # it read the account's chain...
    assert not [r for r in sent if r.startswith("POST")]  # ...and sent nothing
    assert page.evaluate(IDB_RECORDS) == 0


def test_join_with_the_invite_and_the_admins_approval(phone: Phone) -> None:
    page = phone.page
    out = phone.admin.run("device", "invite", "--no-qr").stdout
    url = out.split("invite: ", 1)[1].split()[0]
    assert url.startswith(phone.service.url + "/app/#join=")
    page.goto("about:blank")
    page.goto(url)
    expect(page.get_by_role("form", name="Join an account")).to_contain_text(phone.account)
    page.get_by_label("Device name").fill("phone")
    page.get_by_label("Passphrase", exact=True).fill(PHONE_PASSPHRASE)
    page.get_by_label("Repeat passphrase").fill(PHONE_PASSPHRASE)
    phone.shot("join")
    page.get_by_role("button", name="Join").tap()
    code = page.get_by_label("Pairing code").inner_text(timeout=30_000).strip()
    shown = page.get_by_label("Verification number").inner_text().strip()
    phone.shot("pairing")
    # closed and reopened before the admin approves: still waiting, and the passphrase typed
    # at the join is remembered (docs/PHONE.md section 7)
    page.reload()
    expect(page.get_by_label("Pairing code")).to_have_text(code)
    expect(page.get_by_role("form", name="Unlock")).to_have_count(0)
    out = phone.admin.run("device", "approve", code, "--yes")
    assert f"verification: {shown}" in out.stderr  # the number the person compares
    assert "approved phone as member" in out.stdout
    expect(page.get_by_role("navigation", name="Sections")).to_be_visible(timeout=30_000)
    expect(page.get_by_text("No requests are waiting.")).to_be_visible()
    assert "#" not in page.url  # the invite left the address bar
    phone.shot("prompts-empty")


def test_the_right_number_approves(phone: Phone) -> None:
    rp = phone.rp("Log in to bank.example from Berlin?")
    number = _number(rp)
    card = phone.card("Log in to bank.example from Berlin?")
    expect(card).to_be_visible()
    buttons = card.get_by_role("button", name="Approve with")
    assert buttons.count() == 9  # only the choices; the number itself is not shown apart
    phone.shot("prompt")
    card.get_by_role("button", name=f"Approve with {number}", exact=True).tap()
    assert _finish(rp)[:2] == (0, "approved\n")
    expect(card).to_have_count(0)
    expect(phone.page.get_by_role("status", name="Status")).to_have_text("Approved: bank.example")


def test_a_wrong_number_is_a_refusal(phone: Phone) -> None:
    rp = phone.rp("Wrong number")
    number = _number(rp)
    card = phone.card("Wrong number")
    expect(card).to_be_visible()
    labels = card.get_by_role("button", name="Approve with").all_inner_texts()
    decoy = next(n for n in map(int, labels) if n != number)
    card.get_by_role("button", name=f"Approve with {decoy}", exact=True).tap()
    code, out, err = _finish(rp)
    assert (code, out) == (4, "denied\n") and "number" in err


def test_without_number_matching_one_approve_button(phone: Phone) -> None:
    rp = phone.rp("No numbers here", "--no-number-matching")
    card = phone.card("No numbers here")
    expect(card).to_be_visible()
    expect(card.get_by_role("button", name="Approve with")).to_have_count(0)
    card.get_by_role("button", name="Approve", exact=True).tap()
    assert _finish(rp)[:2] == (0, "approved\n")


def test_deny_and_this_was_not_me(phone: Phone) -> None:
    rp = phone.rp("Deny me")
    _number(rp)
    phone.card("Deny me").get_by_role("button", name="Deny").tap()
    assert _finish(rp)[:2] == (1, "denied\n")
    rp = phone.rp("Not me")
    _number(rp)
    phone.card("Not me").get_by_role("button", name="This wasn't me").tap()
    code, out, err = _finish(rp)
    assert (code, out) == (3, "denied\n") and "report" in err
    reports = phone.admin.json("confirm", "rps", "--json")
    assert [r["reports"] for r in reports if r["name"] == "bank.example"] == [1]


def test_a_lost_connection_loses_and_duplicates_nothing(phone: Phone) -> None:
    page = phone.page
    page.context.set_offline(True)
    expect(page.get_by_text("Offline, reconnecting")).to_be_visible(timeout=40_000)
    rp = phone.rp("Sent while the phone was offline")
    number = _number(rp)
    phone.shot("offline")
    page.context.set_offline(False)
    card = phone.card("Sent while the phone was offline")
    expect(card).to_have_count(1, timeout=30_000)
    expect(page.get_by_text("Offline, reconnecting")).to_be_hidden()
    time.sleep(1.5)  # a few more polls: still one card
    expect(card).to_have_count(1)
    card.get_by_role("button", name=f"Approve with {number}", exact=True).tap()
    assert _finish(rp)[:2] == (0, "approved\n")


REMEMBERED = """async () => {
  const db = await new Promise((ok, ko) => {
    const r = indexedDB.open('keystead');
    r.onsuccess = () => ok(r.result);
    r.onerror = () => ko(r.error);
  });
  const rec = await new Promise((ok, ko) => {
    const r = db.transaction('kv').objectStore('kv').get('unlock');
    r.onsuccess = () => ok(r.result);
    r.onerror = () => ko(r.error);
  });
  db.close();
  if (rec === undefined) return null;
  let exported = 'no';
  try { await crypto.subtle.exportKey('raw', rec.key); exported = 'yes'; }
  catch (e) { exported = e.name; }
  return { type: rec.key.constructor.name, extractable: rec.key.extractable,
           algorithm: rec.key.algorithm.name, exported, days: (rec.expires - rec.created) / 86400,
           prf: 'prf' in rec };
}"""


def test_a_reload_shows_the_prompt_list_without_the_passphrase(phone: Phone) -> None:
    """The cold start of the installed app: the keystore opens with the remembered key, no
    passphrase and no scrypt; the key IndexedDB holds is one a script in the page cannot
    export."""
    page = phone.page
    page.reload()
    expect(page.get_by_text("No requests are waiting.")).to_be_visible()
    expect(page.get_by_role("form", name="Unlock")).to_have_count(0)
    kept = page.evaluate(REMEMBERED)
    assert kept == {
        "type": "CryptoKey",
        "extractable": False,
        "algorithm": "AES-GCM",
        "exported": "InvalidAccessError",
        "days": 7,
        "prf": False,  # headless Chromium has no platform authenticator
    }
    rp = phone.rp("After a cold start")
    number = _number(rp)
    phone.card("After a cold start").get_by_role(
        "button", name=f"Approve with {number}", exact=True
    ).tap()
    assert _finish(rp)[:2] == (0, "approved\n")


def test_lock_now_asks_the_passphrase_and_a_wrong_one_is_shown(phone: Phone) -> None:
    page = phone.page
    phone.shot("home")
    page.get_by_role("button", name="Lock now").tap()
    expect(page.get_by_role("form", name="Unlock")).to_be_visible()
    assert page.evaluate(REMEMBERED) is None  # the wrapping key is deleted
    page.reload()  # and it stays locked
    expect(page.get_by_role("form", name="Unlock")).to_be_visible()
    page.get_by_label("Passphrase").fill("not the passphrase")
    page.get_by_role("button", name="Unlock").tap()
    expect(page.get_by_role("alert")).to_contain_text("wrong passphrase")
    phone.shot("unlock-wrong")
    assert page.evaluate(REMEMBERED) is None
    # unlocked with "keep unlocked: no": the next start asks again
    page.get_by_label("Keep unlocked on this phone").select_option(label="no: ask at every start")
    page.get_by_label("Passphrase").fill(PHONE_PASSPHRASE)
    page.get_by_role("button", name="Unlock").tap()
    expect(page.get_by_text("No requests are waiting.")).to_be_visible()
    assert page.evaluate(REMEMBERED) is None
    page.reload()
    expect(page.get_by_role("form", name="Unlock")).to_be_visible()
    page.get_by_label("Passphrase").fill(PHONE_PASSPHRASE)  # the default: 7 days
    page.get_by_role("button", name="Unlock").tap()
    expect(page.get_by_text("No requests are waiting.")).to_be_visible()
    assert page.evaluate(REMEMBERED)["days"] == 7


def test_the_app_starts_offline_from_its_cache(phone: Phone) -> None:
    """The installed app opens without a network (the service worker's shell and assets) and
    the remembered unlock: the prompt list says it is reconnecting."""
    page = phone.page
    page.context.set_offline(True)
    try:
        page.reload()
        expect(page.get_by_text("Offline, reconnecting")).to_be_visible(timeout=30_000)
        expect(page.get_by_role("form", name="Unlock")).to_have_count(0)
    finally:
        page.context.set_offline(False)
    expect(page.get_by_text("No requests are waiting.")).to_be_visible(timeout=30_000)


def test_with_a_platform_authenticator_the_screen_lock_guards_the_remembered_unlock(
    phone: Phone, playwright: Playwright, browser: Browser
) -> None:
    """Where the phone has a user-verifying authenticator with WebAuthn PRF (here Chromium's
    virtual authenticator, the DevTools protocol's), the remembered key is also wrapped under
    the PRF: a start asks the screen lock, and a refused one falls back to the passphrase."""
    pixel = dict(playwright.devices["Pixel 7"])
    pixel.pop("default_browser_type", None)
    context = browser.new_context(**pixel)
    try:
        page = context.new_page()
        page.set_default_timeout(20_000)
        cdp = context.new_cdp_session(page)
        cdp.send("WebAuthn.enable")
        options = {
            "protocol": "ctap2",
            "ctap2Version": "ctap2_1",
            "transport": "internal",
            "hasResidentKey": True,
            "hasUserVerification": True,
            "isUserVerified": True,
            "hasPrf": True,
            "automaticPresenceSimulation": True,
        }
        auth = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": options})["authenticatorId"]
        # a WebAuthn relying party is a domain name, never an IP address: the app at localhost
        url = phone.service.url.replace("127.0.0.1", "localhost")
        page.goto(f"{url}/app/#join={phone.account}")
        page.get_by_label("Device name").fill("phone-prf")
        page.get_by_label("Passphrase", exact=True).fill(PHONE_PASSPHRASE)
        page.get_by_label("Repeat passphrase").fill(PHONE_PASSPHRASE)
        page.get_by_role("button", name="Join").tap()
        code = page.get_by_label("Pairing code").inner_text(timeout=30_000).strip()
        phone.admin.run("device", "approve", code, "--yes")
        expect(page.get_by_text("No requests are waiting.")).to_be_visible(timeout=30_000)
        kept = page.evaluate(REMEMBERED)
        assert kept["prf"] is True and kept["extractable"] is False, kept
        creds = cdp.send("WebAuthn.getCredentials", {"authenticatorId": auth})["credentials"]
        assert len(creds) == 1
        page.reload()
        expect(page.get_by_role("form", name="Unlock")).to_be_visible()
        page.get_by_role("button", name="Unlock with the screen lock").tap()
        expect(page.get_by_text("No requests are waiting.")).to_be_visible()
        # the screen lock refused: the passphrase is asked, and still opens it
        cdp.send("WebAuthn.setUserVerified", {"authenticatorId": auth, "isUserVerified": False})
        page.reload()
        page.get_by_role("button", name="Unlock with the screen lock").tap()
        expect(page.get_by_role("alert")).to_contain_text("screen lock was not confirmed")
        page.get_by_label("Passphrase").fill(PHONE_PASSPHRASE)
        page.get_by_role("button", name="Unlock", exact=True).tap()
        expect(page.get_by_text("No requests are waiting.")).to_be_visible()
    finally:
        context.close()
        phone.admin.run("device", "remove", "phone-prf")


def _b64d(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def _b64e(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


# The app polls again at once when it comes to the foreground.
POKE = "document.dispatchEvent(new Event('visibilitychange'))"


def test_a_prompt_whose_envelope_was_changed_on_the_way_is_refused_visibly(phone: Phone) -> None:
    """Someone between the service and the phone (or the service itself) relabels a prompt as
    coming from another relying party: the envelope no longer matches the sealed prompt, the
    app refuses it with a visible message and shows no card to approve."""
    page = phone.page

    def relabel(route: Route) -> None:
        resp = route.fetch()
        body = resp.json()
        for row in body.get("prompts", []):
            env = json.loads(_b64d(row["body"]))
            env["rp"] = "evil.example"
            row["body"] = _b64e(json.dumps(env, sort_keys=True, separators=(",", ":")).encode())
        route.fulfill(response=resp, json=body)

    page.route("**/v1/confirm/*/prompts?*", relabel)
    page.evaluate(POKE)  # the poll already waiting went out before the route
    try:
        rp = phone.rp("Relabelled on the way", wait=4)
        _number(rp)
        expect(page.get_by_role("alert")).to_contain_text("Refused and not shown", timeout=20_000)
        phone.shot("prompt-refused")
        expect(page.get_by_role("listitem", name="Request from evil.example")).to_have_count(0)
        expect(phone.card("Relabelled on the way")).to_have_count(0)
        assert _finish(rp)[:2] == (2, "expired\n")  # nobody could answer it
    finally:
        page.unroute_all(behavior="ignoreErrors")
        page.evaluate(POKE)


STORED_CHAIN = """() => new Promise((ok, ko) => {
  const r = indexedDB.open('keystead');
  r.onerror = () => ko(r.error);
  r.onsuccess = () => {
    const get = r.result.transaction('kv').objectStore('kv').get('chain');
    get.onsuccess = () => { r.result.close(); ok(get.result.length); };
    get.onerror = () => ko(get.error);
  };
})"""


def test_a_forged_chain_entry_or_cfrag_is_refused_and_nothing_is_kept(phone: Phone) -> None:
    """The service (or anyone answering for it) cannot sign as the account: an entry it
    appends is refused and not stored; a cfrag it alters does not verify, and the prompt it
    carried is refused, not shown."""
    page = phone.page
    stored = page.evaluate(STORED_CHAIN)

    def forge_entry(route: Route) -> None:
        whole = route.fetch(url=route.request.url.split("?")[0] + "?after=-1").json()["entries"]
        last = _b64d(whole[-1]["entry"])
        entry = json.loads(last)
        entry.update(seq=entry["seq"] + 1, prev=hashlib.sha256(last).hexdigest())
        forged = json.dumps(entry, sort_keys=True, separators=(",", ":")).encode()
        route.fulfill(json={"entries": [{"entry": _b64e(forged), "sig": whole[-1]["sig"]}]})

    page.route("**/v1/accounts/*/chain?*", forge_entry)
    try:
        page.get_by_role("button", name="Codes").tap()
        expect(page.get_by_role("alert")).to_contain_text("signature")
        expect(page.get_by_text("Nothing is shown")).to_be_visible()
        phone.shot("chain-refused")
    finally:
        page.unroute_all(behavior="ignoreErrors")
    assert page.evaluate(STORED_CHAIN) == stored
    page.get_by_role("button", name="Passwords").tap()  # the real chain still reads
    expect(page.get_by_role("searchbox", name="Search passwords")).to_be_visible()

    def alter_cfrag(route: Route) -> None:
        resp = route.fetch()
        body = resp.json()
        for c in body["cfrags"]:
            raw = bytearray(_b64d(c["cfrag"]))
            raw[-1] ^= 1
            c["cfrag"] = _b64e(bytes(raw))
        route.fulfill(response=resp, json=body)

    page.get_by_role("button", name="Requests").tap()
    page.route("**/v1/accounts/*/reencrypt", alter_cfrag)
    try:
        rp = phone.rp("Carried by a bad cfrag", wait=4)
        _number(rp)
        expect(page.get_by_role("alert")).to_contain_text("Refused and not shown")
        expect(phone.card("Carried by a bad cfrag")).to_have_count(0)
        assert _finish(rp)[:2] == (2, "expired\n")
    finally:
        page.unroute_all(behavior="ignoreErrors")


def test_a_push_only_wakes_the_app_and_shows_a_generic_notification(phone: Phone) -> None:
    """The service worker's push handler, driven through the DevTools protocol (headless
    Chromium has no push service): whatever the payload says, the notification is the generic
    one, and the open app is woken to poll at once."""
    page = phone.page
    page.context.grant_permissions(["notifications"], origin=phone.service.url)
    cdp = page.context.new_cdp_session(page)
    regs: list[str] = []
    cdp.on(
        "ServiceWorker.workerRegistrationUpdated",
        lambda ev: regs.extend(r["registrationId"] for r in ev["registrations"]),
    )
    cdp.send("ServiceWorker.enable")
    deadline = time.monotonic() + 10
    while not regs and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    assert regs, "no service worker registration"
    page.evaluate(
        """() => { window.__woken = 0; navigator.serviceWorker.addEventListener('message',
        (e) => { if (e.data && e.data.type === 'wake') window.__woken++; }); }"""
    )
    lure = '{"rp":"bank.example","msg":"Approve 42 to continue"}'
    cdp.send(
        "ServiceWorker.deliverPushMessage",
        {"origin": phone.service.url + "/", "registrationId": regs[0], "data": lure},
    )
    page.wait_for_function("window.__woken > 0")
    shown: list[dict[str, str]] = []
    deadline = time.monotonic() + 10
    while not shown and time.monotonic() < deadline:  # the wake-up is posted before it shows
        shown = page.evaluate(
            """async () => (await (await navigator.serviceWorker.ready).getNotifications())
            .map((n) => ({title: n.title, body: n.body}))"""
        )
    assert shown == [
        {"title": "Keystead: a request is waiting", "body": "Open Keystead to see it."}
    ]
    cdp.detach()


def _oathtool(at: int) -> str:
    return subprocess.run(
        ["oathtool", "--totp", "-b", "-N", f"@{at}", SECRET],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def test_totp_codes_match_oathtool(phone: Phone) -> None:
    phone.admin.run("totp", "add", f"otpauth://totp/Example:alice?secret={SECRET}&issuer=Example")
    page = phone.page
    page.get_by_role("button", name="Codes").tap()
    code = page.get_by_label("Code for Example (alice)", exact=True)
    expect(code).to_have_text(re.compile(r"^\d{6}$"))
    before = int(time.time())
    shown = code.inner_text()
    after = int(time.time())
    assert shown in {_oathtool(before), _oathtool(after)}
    phone.shot("codes")
    # without a connection the codes still come, from the last sync (and say so)
    page.context.set_offline(True)
    try:
        page.get_by_role("button", name="Requests").tap()
        page.get_by_role("button", name="Codes").tap()
        expect(page.get_by_role("note")).to_contain_text("Offline")
        now = int(time.time())
        assert code.inner_text() in {_oathtool(now), _oathtool(int(time.time()))}
    finally:
        page.context.set_offline(False)
    page.get_by_role("button", name="Copy code for Example (alice)").tap()
    assert page.evaluate("navigator.clipboard.readText()") in {
        _oathtool(before),
        _oathtool(after + 1),
    }


def test_a_password_added_on_the_laptop_is_shown_and_searchable(phone: Phone) -> None:
    phone.admin.run(
        "passwords",
        "add",
        "https://mail.example.org",
        "--username",
        "alice",
        input="s3cret-from-the-laptop\n",
    )
    phone.admin.run(
        "passwords", "add", "https://shop.example.net", "--username", "bob", input="another-one\n"
    )
    page = phone.page
    page.get_by_role("button", name="Passwords").tap()
    search = page.get_by_role("searchbox", name="Search passwords")
    expect(page.get_by_role("listitem", name="mail.example.org")).to_be_visible()
    expect(page.get_by_role("listitem", name="shop.example.net")).to_be_visible()
    search.fill("mail")
    expect(page.get_by_role("listitem", name="shop.example.net")).to_have_count(0)
    item = page.get_by_role("listitem", name="mail.example.org")
    item.get_by_role("button", name="Show password for mail.example.org").tap()
    expect(item.get_by_label("Password for mail.example.org", exact=True)).to_have_text(
        "s3cret-from-the-laptop"
    )
    phone.shot("passwords")
    item.get_by_role("button", name="Copy password for mail.example.org").tap()
    assert page.evaluate("navigator.clipboard.readText()") == "s3cret-from-the-laptop"
    expect(page.get_by_role("status", name="Status")).to_contain_text("cleared in 30 s")
    # 30 s later the clipboard is empty (the page's clock is run forward instead of waited for)
    page.clock.install()
    item.get_by_role("button", name="Copy username for mail.example.org").tap()
    assert page.evaluate("navigator.clipboard.readText()") == "alice"
    page.clock.fast_forward("00:29")
    assert page.evaluate("navigator.clipboard.readText()") == "alice"
    page.clock.fast_forward("00:02")
    expect(page.get_by_role("status", name="Status")).to_have_text("Clipboard cleared.")
    assert page.evaluate("navigator.clipboard.readText()") == ""


def test_removal_shows_it_and_wipes_the_keystore(phone: Phone) -> None:
    page = phone.page
    assert page.evaluate(IDB_RECORDS) > 0  # the keystore, the device record, the chain
    phone.admin.run("device", "remove", "phone")
    page.get_by_role("button", name="Requests").tap()
    expect(page.get_by_role("heading", name="This phone was removed")).to_be_visible(timeout=40_000)
    expect(page.get_by_text("erased from this phone")).to_be_visible()
    phone.shot("removed")
    assert page.evaluate(IDB_RECORDS) == 0
    # what is left is the join screen, not an unlock
    page.get_by_role("button", name="Add this phone again").tap()
    expect(page.get_by_role("form", name="Join an account")).to_be_visible()
    page.reload()
    form = page.get_by_role("form", name="Join an account")
    expect(form).to_contain_text(phone.service.url)
    # without an invite the account is typed; one the service does not have is one line
    form.get_by_label("Account").fill(unique("nobody"))
    form.get_by_label("Passphrase", exact=True).fill(PHONE_PASSPHRASE)
    form.get_by_label("Repeat passphrase").fill(PHONE_PASSPHRASE)
    form.get_by_role("button", name="Join").tap()
    expect(page.get_by_role("alert")).to_contain_text("no account")
    assert page.evaluate(IDB_RECORDS) == 0
