"""The main flow through the real CLI and a real service process: create, join, remove."""

from __future__ import annotations


def test_join_list_and_remove(make_account):
    acct = make_account("alice")
    phone = acct.join("phone")
    devices = {d["name"]: d for d in phone.json("device", "list", "--json")}
    assert set(devices) == {"laptop", "phone"}
    assert devices["laptop"]["role"] == "admin"
    assert devices["phone"]["role"] == "member"
    for d in devices.values():
        assert {"name", "role", "scopes", "fingerprint", "added"} <= set(d)

    acct.admin.run("device", "remove", "phone")
    gone = phone.run("sync", check=False)
    assert gone.returncode != 0
    assert gone.stderr.count("\n") == 1, gone.stderr
    assert "removed" in gone.stderr
    assert "Traceback" not in gone.stderr
    names = [d["name"] for d in acct.admin.json("device", "list", "--json")]
    assert names == ["laptop"]
