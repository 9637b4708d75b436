"""Pairing a phone from an invite (docs/PHONE.md §4), with the real CLI and service: the
admin's ``device invite``, a device joining from the invite (``device join --invite``, the
same steps the app takes), the admin's ``device approve``; and the attacker who points the
invite at a service of their own."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from keystead.core.qr import render_qr
from keystead.core.testing import DeviceHome, ServiceProcess, database_url, unique


def invite(admin: DeviceHome, *args: str) -> tuple[str, str, str]:
    proc = admin.run("device", "invite", *args)
    first, _, rest = proc.stdout.partition("\n")
    assert first.startswith("invite: ")
    return first.removeprefix("invite: "), rest, proc.stderr


def test_invite_url_and_qr(make_account: Any) -> None:
    acct = make_account("invite")
    fp = acct.admin.json("account", "show", "--json")["account_fingerprint"]
    url, rest, err = invite(acct.admin, "--url", "https://phone.example:8443/")
    assert url == f"https://phone.example:8443/app/#join={acct.name}&fp={quote(fp, safe='')}"
    parts = urlsplit(url)
    assert parts.path == "/app/" and parts.query == ""
    # what the app reads with URLSearchParams(location.hash.slice(1)); '+' stays '+'
    fields = parse_qs(parts.fragment)
    assert fields == {"join": [acct.name], "fp": [fp]}
    assert "+" not in parts.fragment and "/" not in parts.fragment
    assert rest == render_qr(url)
    assert "keystead device approve CODE" in err and "warning" not in err

    # default: the admin's own server; a plain-http address off loopback gets a warning
    own, _, err = invite(acct.admin, "--no-qr")
    assert own.startswith(acct.service.url + "/app/#join=") and "warning" not in err
    _, rest, err = invite(acct.admin, "--url", "http://192.168.1.20:8470", "--no-qr")
    assert rest == "" and "warning: a phone runs the app only over https" in err
    bad = acct.admin.run("device", "invite", "--url", "ftp://x", check=False)
    assert bad.returncode == 1 and len(bad.stderr.strip().splitlines()) == 1

    member = acct.join("tablet")
    refused = member.run("device", "invite", check=False)
    assert refused.returncode == 1 and "only an admin device" in refused.stderr


def join_from(home: DeviceHome, url: str, device: str) -> Any:
    return home.spawn("device", "join", "--invite", url, "--device", device, "--wait", "60")


def test_a_device_joins_from_the_invite(make_account: Any, tmp_path: Path) -> None:
    acct = make_account("invite")
    url, _, _ = invite(acct.admin, "--no-qr")
    phone = DeviceHome(tmp_path / "phone")
    proc = join_from(phone, url, "phone")
    assert proc.stdout is not None
    code = proc.stdout.readline().split(": ", 1)[1].strip()
    sas = proc.stdout.readline().split(": ", 1)[1].strip()
    approved = acct.admin.run("device", "approve", code, "--scopes", "confirm,totp", "--yes")
    assert f"verification: {sas}" in approved.stderr  # both sides show the same number
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert f"approved: phone joined {acct.name} as member" in out
    names = {d["name"]: d for d in acct.admin.json("device", "list", "--json")}
    assert "phone" in names and set(names["phone"]["scopes"]) == {"confirm", "totp"}


def test_an_invite_pointed_at_another_service_is_refused(make_account: Any, tmp_path: Path) -> None:
    """The attacker runs a service with an account of the same name (their own keys) and
    gets the phone to open the invite there: the phone sends nothing and makes no keys."""
    acct = make_account("invite")
    real_url, _, _ = invite(acct.admin, "--no-qr")
    work = tmp_path / "evil"
    work.mkdir()
    with ServiceProcess(database_url(work), work) as evil:
        mallory = DeviceHome(tmp_path / "mallory")
        mallory.run("account", "create", acct.name, "--server", evil.url, "--device", "m")
        forged = real_url.replace(acct.service.url, evil.url)
        phone = DeviceHome(tmp_path / "phone")
        proc = phone.run("device", "join", "--invite", forged, "--device", "phone", check=False)
        assert proc.returncode == 1 and "not joining" in proc.stderr
        assert proc.stdout == "" and not phone.path.exists()


def test_bad_invites(tmp_path: Path, service: ServiceProcess) -> None:
    phone = DeviceHome(tmp_path / "phone")
    name = unique("nobody")
    for url, words in (
        (f"{service.url}/app/#join={name}", "no fingerprint"),
        (f"{service.url}/app/#fp=SHA256%3Aabc", "no account"),
        (f"{service.url}/elsewhere/#join={name}&fp=SHA256%3Aabc", "address of the app"),
        ("mailto:x@example.com", "http(s)"),
    ):
        proc = phone.run("device", "join", "--invite", url, check=False)
        assert proc.returncode == 1, url
        assert words in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    proc = phone.run("device", "join", check=False)
    assert proc.returncode == 1 and "--invite" in proc.stderr
