"""Autofill from the synced vault: real Chromium runs ``keystead passwords browser host``.

The password is added on one device; the browser's host runs on another device
that has never synced, so what fills the form came through the service.
"""

from __future__ import annotations

import shlex
import stat
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

LOGIN_FORM = """<form id="login" action="/nowhere">
  <input id="user" type="text" name="username">
  <input id="pass" type="password" name="password">
  <button>Sign in</button>
</form>"""
SECRET = 'fr0m "another" device, ü'


@pytest.fixture
def devices(make_account):  # type: ignore[no-untyped-def]
    acct = make_account("autofill")
    return acct.admin, acct.join("browser-laptop")


@pytest.fixture
def native_host_command(tmp_path: Path, devices) -> Path:  # type: ignore[no-untyped-def]
    """A wrapper that execs the real host in the browser device's home."""
    _, browser_device = devices
    script = tmp_path / "keystead-native-host"
    env = " ".join(
        f"{k}={shlex.quote(v)}"
        for k, v in browser_device.env().items()
        if k in ("KEYSTEAD_HOME", "KEYSTEAD_PASSPHRASE", "PATH")
    )
    script.write_text(
        f"#!/bin/sh\nexec env {env} {shlex.quote(sys.executable)} "
        "-m keystead.core.cli passwords browser host "
        f"2>>{shlex.quote(str(tmp_path / 'host.err'))}\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def test_a_password_added_on_another_device_fills_the_form(
    autofill_browser, sites, devices, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    top, other = sites
    adder, _ = devices
    adder.run("passwords", "add", f"{top.origin}/login", "-u", "alice", input=SECRET + "\n")
    adder.run("passwords", "add", f"{other.origin}/", "-u", "mallory", input="other-site\n")
    top.pages["/login"] = f"<!doctype html><html><body>{LOGIN_FORM}</body></html>"
    page = autofill_browser.new_page()
    page.goto(f"{top.origin}/login")
    try:
        page.wait_for_function("document.querySelector('#pass').value !== ''", timeout=30_000)
    except Exception:
        err = tmp_path / "host.err"
        raise AssertionError(err.read_text() if err.exists() else "host wrote nothing") from None
    assert page.eval_on_selector("#user", "e => e.value") == "alice"
    assert page.eval_on_selector("#pass", "e => e.value") == SECRET


def test_the_host_serves_only_the_origin_asked_for(devices, sites) -> None:  # type: ignore[no-untyped-def]
    import io
    import struct
    import subprocess

    from keystead.adapters.passwords._native import read_frame

    top, other = sites
    adder, host_device = devices
    adder.run("passwords", "add", f"{top.origin}/login", "-u", "alice", input="top\n")
    adder.run("passwords", "add", "https://www.example.com/", "-u", "bob", input="ex\n")

    def frame(msg: bytes) -> bytes:
        return struct.pack("=I", len(msg)) + msg

    requests = b"".join(
        frame(m)
        for m in (
            f'{{"v":1,"type":"lookup","origin":"{top.origin}"}}'.encode(),
            f'{{"v":1,"type":"lookup","origin":"{other.origin}"}}'.encode(),
            b'{"v":1,"type":"lookup","origin":"https://example.com"}',
            b'{"v":1,"type":"lookup","origin":"https://www.example.com/path"}',
        )
    )
    out = subprocess.run(
        [sys.executable, "-m", "keystead.core.cli", "passwords", "browser", "host"],
        input=requests,
        capture_output=True,
        env=host_device.env(),
        timeout=60,
        check=True,
    )
    stream = io.BytesIO(out.stdout)
    answers = [read_frame(stream) for _ in range(4)]
    assert answers[0]["credentials"] == [{"username": "alice", "password": "top"}]
    assert answers[1]["credentials"] == []
    assert answers[2]["credentials"] == []  # same site, other host: never autofilled
    assert answers[3]["type"] == "error"
