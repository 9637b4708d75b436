"""Twelve ``keystead passwords add`` runs at once on one device, against a real service.

Every run writes its item and updates the device's lookup index while the others do the
same; afterwards an exact-URL lookup must find exactly its own entry straight from the
index (no sync in between), never "12 entries match" from the origin tier because the
exact tokens of some entries were lost.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from keystead.core.testing import CLI

N = 12


def test_twelve_parallel_adds_leave_an_exact_index(make_account: Any, tmp_path: Path) -> None:
    dev = make_account("pwpar").admin
    # The device has used its vault before: its index key and index exist.
    dev.run("sync")
    runs = []
    for i in range(N):  # each password in a file: the twelve start and run at once
        (tmp_path / f"in{i}").write_text(f"pw{i}\n")
        with open(tmp_path / f"in{i}") as stdin, open(tmp_path / f"err{i}", "w") as stderr:
            runs.append(
                subprocess.Popen(
                    [*CLI, "passwords", "add", f"https://shop.test/item/{i}", "-u", f"user{i}"],
                    stdin=stdin,
                    stdout=subprocess.DEVNULL,
                    stderr=stderr,
                    env=dev.env(),
                )
            )
    for i, proc in enumerate(runs):
        proc.wait(timeout=180)
        err = (tmp_path / f"err{i}").read_text()
        assert proc.returncode == 0, err
        assert "Traceback" not in err
    for i in range(N):
        got = dev.json("passwords", "get", f"https://shop.test/item/{i}", "--json")
        assert (got["match"], got["username"], got["password"]) == ("exact", f"user{i}", f"pw{i}")
    assert len(dev.json("passwords", "list", "--json")) == N


def test_two_commands_that_unlocked_together_share_one_index_key(make_account: Any) -> None:
    """Two commands unlock the device before either has made the index key (as two parallel
    first runs do): both must end up with one key, or each one's index rows are garbage to
    the other and a later exact lookup falls back to "N entries match" by origin."""
    from keystead.adapters.passwords._entry import Entry
    from keystead.adapters.passwords._vault import Vault, now_ms
    from keystead.core import Device
    from keystead.core import Home as CoreHome

    home = make_account("pwkey").admin
    first, second = (Device.open(CoreHome(home.path), home.passphrase) for _ in range(2))
    vaults = [Vault(first), Vault(second)]
    try:
        _ = vaults[0].index
        _ = vaults[1].index
        for n, vault in enumerate(vaults):
            t = now_ms()
            vault.write(
                Entry(
                    id=f"e{n}",
                    name="shop",
                    url=f"https://shop.test/item/{n}",
                    username=f"user{n}",
                    password=f"pw{n}",
                    created=t,
                    updated=t,
                )
            )
    finally:
        for vault in vaults:
            vault.close()
            vault.device.close()
    for n in range(2):
        got = home.json("passwords", "get", f"https://shop.test/item/{n}", "--json")
        assert (got["match"], got["username"]) == ("exact", f"user{n}")
