"""``account show`` and ``device list`` work with the service stopped, from the cached chain,
and say so; with the service back they show the newest chain again."""

from __future__ import annotations

import json
from typing import Any


def test_account_show_and_device_list_offline(make_account: Any, service: Any) -> None:
    home = make_account("offline").admin
    online = home.json("account", "show", "--json")
    assert online["chain"]["cached"] is False
    service.stop()  # this module's own service process
    try:
        info = json.loads(home.run("account", "show", "--json").stdout)
        assert info["chain"]["cached"] is True and info["chain"]["seq"] == online["chain"]["seq"]
        assert info["device"]["name"] == "laptop"
        assert "cached" in home.run("account", "show").stdout
        listed = home.run("device", "list", "--json")
        assert [d["name"] for d in json.loads(listed.stdout)] == ["laptop"]
        assert "cached chain" in listed.stderr and listed.stderr.count("\n") == 1
        # commands that need the service still fail with one line
        synced = home.run("sync", check=False)
        assert synced.returncode == 1 and synced.stderr.startswith("keystead: ")
    finally:
        service.start()
    assert home.json("account", "show", "--json")["chain"]["cached"] is False
