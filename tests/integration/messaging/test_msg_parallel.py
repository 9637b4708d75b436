"""Twelve ``keystead msg inbox`` runs at once on one device: each message is stored once."""

from __future__ import annotations

import json
from typing import Any


def test_twelve_parallel_inbox_runs_store_each_message_once(make_account: Any) -> None:
    alice, bob = make_account("alice"), make_account("bob")
    for i in range(5):
        alice.admin.run("msg", "send", bob.name, f"message {i}")
    runs = [bob.admin.spawn("msg", "inbox", "--json") for _ in range(12)]
    for proc in runs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert "Traceback" not in err
        json.loads(out)
    inbox = bob.admin.json("msg", "inbox", "--json")
    assert [m["text"] for m in inbox] == [f"message {i}" for i in range(5)]
    assert all(m["verified"] for m in inbox)  # none refused as a replay by a parallel run
