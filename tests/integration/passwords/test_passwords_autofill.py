"""Autofill end to end: real headless Chromium, the shipped extension, a native host process."""

from __future__ import annotations

from pathlib import Path

import pytest
from keystead.adapters.passwords._entry import Entry

pytestmark = pytest.mark.slow

LOGIN_FORM = """<form id="login" action="/nowhere">
  <input id="user" type="text" name="username">
  <input id="pass" type="password" name="password">
  <button>Sign in</button>
</form>"""

TOP_PASSWORD = 'pa,ss "w0rd" ü\u00a0 '
FRAME_PASSWORD = "frame-site-secret"


def _page(title: str, body: str) -> str:
    return f"<!doctype html><html><head><title>{title}</title></head><body>{body}</body></html>"


def _serve(sites, frame_path: str) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    top, other = sites
    frame_page = _page("frame", LOGIN_FORM)
    other.pages["/frame"] = frame_page
    top.pages["/frame"] = frame_page
    src = f"{other.origin}/frame" if frame_path == "cross" else "/frame"
    top.pages["/login"] = _page("login", LOGIN_FORM + f'<iframe id="f" src="{src}"></iframe>')
    return top.origin, other.origin


@pytest.fixture
def vault_entries(request, sites) -> list[Entry]:  # type: ignore[no-untyped-def]
    if hasattr(request, "param"):
        return list(request.param)
    top, other = sites
    return [
        Entry(id="top", url=f"{top.origin}/login", username="alice", password=TOP_PASSWORD),
        Entry(id="frame", url=f"{other.origin}/", username="mallory", password=FRAME_PASSWORD),
    ]


def _values(frame) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    user = frame.eval_on_selector("#user", "e => e.value")
    password = frame.eval_on_selector("#pass", "e => e.value")
    return user, password


def _open_and_wait_for_top_fill(browser, url: str):  # type: ignore[no-untyped-def]
    page = browser.new_page()
    page.goto(url)
    page.wait_for_function("document.querySelector('#pass').value !== ''", timeout=20_000)
    frame = page.frame_locator("#f").locator("#pass")
    frame.wait_for(state="attached", timeout=10_000)
    inner = next(f for f in page.frames if f.url.endswith("/frame"))
    inner.wait_for_load_state("load")
    page.wait_for_timeout(1_500)  # give the frame's content script every chance to act
    return page, inner


def _requested(host_log: Path) -> list[str]:
    return host_log.read_text().split() if host_log.exists() else []


def test_fills_the_login_form_but_not_a_cross_origin_frame(
    autofill_browser, sites, host_log: Path
) -> None:  # type: ignore[no-untyped-def]
    top_origin, other_origin = _serve(sites, "cross")
    page, inner = _open_and_wait_for_top_fill(autofill_browser, f"{top_origin}/login")
    assert _values(page) == ("alice", TOP_PASSWORD)
    assert _values(inner) == ("", "")
    assert top_origin in _requested(host_log)
    assert other_origin not in _requested(host_log)


@pytest.mark.parametrize("extension_path", ["unguarded"], indirect=True)
def test_background_refuses_a_cross_origin_frame_even_if_its_script_asks(
    autofill_browser, sites, host_log: Path
) -> None:  # type: ignore[no-untyped-def]
    top_origin, other_origin = _serve(sites, "cross")
    page, inner = _open_and_wait_for_top_fill(autofill_browser, f"{top_origin}/login")
    assert _values(page) == ("alice", TOP_PASSWORD)
    assert _values(inner) == ("", "")
    assert other_origin not in _requested(host_log)


def test_fills_a_same_origin_frame(autofill_browser, sites, host_log: Path) -> None:  # type: ignore[no-untyped-def]
    top_origin, _ = _serve(sites, "same")
    page, inner = _open_and_wait_for_top_fill(autofill_browser, f"{top_origin}/login")
    inner.wait_for_function("document.querySelector('#pass').value !== ''", timeout=10_000)
    assert _values(inner) == ("alice", TOP_PASSWORD)


@pytest.mark.parametrize("vault_entries", [[]], indirect=True)
def test_leaves_the_form_empty_when_the_vault_has_nothing_for_the_origin(
    autofill_browser, sites, host_log: Path
) -> None:  # type: ignore[no-untyped-def]
    top, _ = sites
    top.pages["/login"] = _page("login", LOGIN_FORM)
    page = autofill_browser.new_page()
    page.goto(f"{top.origin}/login")
    deadline = 20_000
    while deadline > 0 and top.origin not in _requested(host_log):
        page.wait_for_timeout(200)
        deadline -= 200
    assert _requested(host_log) == [top.origin]
    page.wait_for_timeout(500)
    assert _values(page) == ("", "")
