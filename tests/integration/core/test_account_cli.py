"""Account and device lifecycle through the real CLI against a real service process.

Each refusal must be one line on stderr, no traceback, and a non-zero exit.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from keystead.core.account import ensure_collections
from keystead.core.device import Device
from keystead.core.errors import Forbidden
from keystead.core.home import Home as CoreHome
from keystead.core.testing import free_port

CLI = [sys.executable, "-m", "keystead.core.cli"]
PASSPHRASE = "correct horse battery staple"  # the one tests/conftest.py's homes use


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def run(
    home: Path, *args: str, passphrase: str | None = PASSPHRASE, input: str = ""
) -> subprocess.CompletedProcess[str]:
    """The real CLI in a fresh KEYSTEAD_HOME (no account made by ``make_account``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYSTEAD_")}
    env["KEYSTEAD_HOME"] = str(home)
    if passphrase is not None:
        env["KEYSTEAD_PASSPHRASE"] = passphrase
    return subprocess.run(
        [*CLI, *args], input=input, capture_output=True, text=True, timeout=60, env=env
    )


def new_home(acct: Any, path: Path) -> Any:
    """A device home of the same kind ``make_account`` hands out (tests/conftest.py)."""
    return type(acct.admin)(path)


def one_line_error(proc: subprocess.CompletedProcess[str], *words: str, after: int = 0) -> None:
    """Non-zero, no traceback, and (after ``after`` informational lines) one error line."""
    assert proc.returncode != 0, proc
    lines = proc.stderr.splitlines()
    assert len(lines) == after + 1 and lines[-1].startswith("keystead: "), proc.stderr
    assert "Traceback" not in proc.stderr
    for w in words:
        assert w in lines[-1].lower(), proc.stderr


def add_collections(acct: Any, *names: str) -> None:
    """Collections normally come from installed adapters; here the admin adds them."""
    with Device.open(CoreHome(acct.admin.path), acct.admin.passphrase) as dev:
        ensure_collections(dev, names)


def test_account_create_prints_exactly_the_recovery_key(service, tmp_path: Path) -> None:
    proc = run(
        tmp_path / "h",
        "account",
        "create",
        unique("rk"),
        "--server",
        service.url,
        "--device",
        "laptop",
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 1, proc.stdout
    m = re.fullmatch(r"recovery key: (\S+)", lines[0])
    assert m and m.group(1).startswith("KSR1-")
    assert m.group(1) not in proc.stderr


def test_admin_join_can_approve_a_third_device(make_account) -> None:
    acct = make_account("adm")
    desktop = acct.join("desktop", role="admin")
    roles = {d["name"]: d["role"] for d in desktop.json("device", "list", "--json")}
    assert roles == {"laptop": "admin", "desktop": "admin"}
    replace(acct, admin=desktop).join("phone")
    names = sorted(d["name"] for d in acct.admin.json("device", "list", "--json"))
    assert names == ["desktop", "laptop", "phone"]


def test_scopes_are_listed_and_enforced(make_account) -> None:
    acct = make_account("scope")
    add_collections(acct, "notes", "passwords")
    phone = acct.join("phone", scopes=["passwords"])
    devices = {d["name"]: d for d in phone.json("device", "list", "--json")}
    assert devices["phone"]["scopes"] == ["passwords"]
    assert {"notes", "passwords"} <= set(devices["laptop"]["scopes"])
    assert devices["phone"]["this"] and not devices["laptop"]["this"]
    with Device.open(CoreHome(phone.path), phone.passphrase) as dev:
        with pytest.raises(Forbidden):
            dev.client.get(f"/accounts/{acct.name}/collections/notes/items")
        assert dev.client.get(f"/accounts/{acct.name}/collections/passwords/items") == {"items": []}
    assert phone.json("sync", "--json")["collections"].keys() == {"passwords"}


def test_unknown_scope_is_refused_with_one_line(make_account) -> None:
    acct = make_account("noscope")
    home = new_home(acct, acct.tmp / "phone-x")
    proc = home.spawn(
        "device",
        "join",
        acct.name,
        "--server",
        acct.service.url,
        "--device",
        "phone",
        "--wait",
        "1",
    )
    assert proc.stdout is not None
    code = proc.stdout.readline().split(": ", 1)[1].strip()
    # approve first shows the joining device (3 lines), then refuses in one line
    one_line_error(
        acct.admin.run("device", "approve", code, "--scopes", "nope", "--yes", check=False),
        "scope",
        after=3,
    )
    proc.communicate(timeout=30)


def test_recovery_onto_a_new_home_can_approve_a_join(make_account, tmp_path: Path) -> None:
    acct = make_account("rec")
    rescue = new_home(acct, tmp_path / "rescue")
    out = rescue.run(
        "account",
        "recover",
        acct.name,
        "--server",
        acct.service.url,
        "--device",
        "rescue",
        input=acct.recovery_key + "\n",
    ).stdout
    assert "recovered" in out
    me = next(d for d in rescue.json("device", "list", "--json") if d["this"])
    assert (me["name"], me["role"]) == ("rescue", "admin")
    replace(acct, admin=rescue).join("phone")
    names = sorted(d["name"] for d in acct.admin.json("device", "list", "--json"))
    assert names == ["laptop", "phone", "rescue"]


def test_wrong_recovery_key_is_one_line(make_account, tmp_path: Path) -> None:
    acct = make_account("badrec")
    other = make_account("other")
    proc = run(
        tmp_path / "r",
        "account",
        "recover",
        acct.name,
        "--server",
        acct.service.url,
        input=other.recovery_key + "\n",
    )
    one_line_error(proc, "recovery key")
    proc = run(
        tmp_path / "r2",
        "account",
        "recover",
        acct.name,
        "--server",
        acct.service.url,
        input="not a key\n",
    )
    one_line_error(proc, "recovery key")


def test_no_passphrase_and_no_terminal_is_one_line(make_account, service, tmp_path: Path) -> None:
    acct = make_account("nopw")
    env = {k: v for k, v in acct.admin.env().items() if k != "KEYSTEAD_PASSPHRASE"}
    one_line_error(
        acct.admin.run("device", "list", env=env, input="", check=False), "keystead_passphrase"
    )
    proc = run(
        tmp_path / "fresh",
        "account",
        "create",
        unique("nopw"),
        "--server",
        service.url,
        passphrase=None,
    )
    one_line_error(proc, "keystead_passphrase")
    assert not (tmp_path / "fresh" / "keystore.json").exists()


def test_wrong_passphrase_is_one_line(make_account) -> None:
    acct = make_account("wrongpw")
    wrong = replace(acct.admin, passphrase="nope")
    one_line_error(wrong.run("sync", check=False), "passphrase")


def test_used_pairing_code_is_refused(make_account) -> None:
    acct = make_account("used")
    home = new_home(acct, acct.tmp / "phone-used")
    proc = home.spawn(
        "device",
        "join",
        acct.name,
        "--server",
        acct.service.url,
        "--device",
        "phone",
        "--wait",
        "60",
    )
    assert proc.stdout is not None
    code = proc.stdout.readline().split(": ", 1)[1].strip()
    acct.admin.run("device", "approve", code, "--yes")
    proc.communicate(timeout=60)
    assert proc.returncode == 0
    one_line_error(acct.admin.run("device", "approve", code, "--yes", check=False), "pairing code")
    one_line_error(
        acct.admin.run("device", "approve", "AAAAA-BBBBB", "--yes", check=False), "pairing code"
    )


def test_removed_device_cannot_remove_or_approve(make_account) -> None:
    acct = make_account("rm")
    desktop = acct.join("desktop", role="admin")
    acct.admin.run("device", "remove", "desktop")
    one_line_error(desktop.run("device", "remove", "laptop", check=False), "removed")
    one_line_error(desktop.run("sync", check=False), "removed")
    one_line_error(acct.admin.run("device", "remove", "desktop", check=False), "desktop")


@pytest.mark.parametrize("url", ["garbage", "nosuchdb://x", "sqlite:////nonexistent/dir/x.db"])
def test_serve_with_a_bad_database_url_is_one_line(url: str, tmp_path: Path) -> None:
    proc = subprocess.run(
        [*CLI, "serve", "--port", str(free_port()), "--database-url", url],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    one_line_error(proc, "database")
    assert sys.executable  # the CLI ran under this interpreter


def test_recovery_after_a_label_and_a_removal_by_a_stale_admin(
    make_account, tmp_path: Path
) -> None:
    """Finding #9 of the security review, through the CLI: an admin that joined before a
    label existed removes a device; recovery still restores every key, the label's too."""
    from keystead.core.sealed import seal_key

    acct = make_account("stale")
    add_collections(acct, "documents")  # the scope labels ("documents/...") are opened with
    desktop = acct.join("desktop", role="admin")  # joins before the label exists
    acct.join("phone")
    with Device.open(CoreHome(acct.admin.path), acct.admin.passphrase) as dev:
        assert ensure_collections(dev, ["documents/default"], kind="keys") == ["documents/default"]
        before = seal_key(dev.chain(), "documents/default", b"document key 1")
    desktop.run("device", "remove", "phone")  # the stale admin changes the account
    rescue = new_home(acct, tmp_path / "rescue")
    out = rescue.run(
        "account",
        "recover",
        acct.name,
        "--server",
        acct.service.url,
        "--device",
        "rescue",
        input=acct.recovery_key + "\n",
    )
    assert "recovered" in out.stdout and "Traceback" not in out.stderr
    with Device.open(CoreHome(rescue.path), rescue.passphrase) as dev:
        secrets = dev.secrets
        assert secrets is not None and set(secrets.epochs["documents/default"]) == {1, 2}
        chain = dev.chain()
        after = seal_key(chain, "documents/default", b"document key 2")
        assert dev.open_sealed(chain, [before, after]) == [b"document key 1", b"document key 2"]
    rescue.run("device", "remove", "desktop")  # an admin removal: the account key rotates
    one_line_error(desktop.run("sync", check=False), "removed")
    names = sorted(d["name"] for d in rescue.json("device", "list", "--json"))
    assert names == ["laptop", "rescue"]
    with Device.open(CoreHome(acct.admin.path), acct.admin.passphrase) as dev:
        assert dev.chain().key_generation == 1
