"""The example "notes" adapter, installed as a third party would ship it (a distribution with
a ``keystead.adapters`` entry point on the path), end to end against a real service process:
its collection syncs between devices, its channel takes what it declared and nothing else."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from keystead.core.testing import ServiceProcess

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    """This module's service and CLI runs find the notes adapter through its entry point."""
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(HERE), old) if p)
    work = tmp_path_factory.mktemp("service")
    url = os.environ.get("KEYSTEAD_TEST_DATABASE_URL") or f"sqlite:///{work / 'service.sqlite'}"
    svc = ServiceProcess(url, work)
    svc.start()
    try:
        yield svc
    finally:
        svc.stop()
        if old is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = old


def test_notes_end_to_end(make_account: Any) -> None:
    alice, bob = make_account("alice"), make_account("bob")
    assert "notes" in alice.admin.json("account", "show", "--json")["collections"]
    # the collection: written on one device, read on another after its sync
    alice.admin.run("notes", "add", "buy milk")
    tablet = alice.join("tablet", scopes=["notes"])
    alice.admin.run("notes", "add", "call bob")
    assert tablet.json("notes", "list", "--json") == ["buy milk", "call bob"]
    # the channel: another account may post, as declared...
    bob.admin.run("notes", "send", alice.name, "lunch at one?")
    assert tablet.json("notes", "inbox", "--json") == [{"from": bob.name, "text": "lunch at one?"}]
    # ...and the account's own devices may not: the service enforces the declaration
    own = alice.admin.run("notes", "send", alice.name, "to myself", check=False)
    assert own.returncode == 1 and own.stderr.startswith("keystead: ")
    assert "may not post" in own.stderr
    # a device without the notes scope reads neither
    phone = alice.join("phone", scopes=["passwords"])
    denied = phone.run("notes", "list", check=False)
    assert denied.returncode == 1 and "scope" in denied.stderr


def test_the_adapter_uses_only_the_public_interface() -> None:
    import ast

    for path in (HERE / "keystead_notes").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.ImportFrom)
                and node.module
                and node.module.startswith("keystead")
            ):
                parts = node.module.split(".")
                assert parts[:2] == ["keystead", "core"], (path, node.module)
                assert not any(p.startswith("_") for p in parts), (path, node.module)
                assert not any(a.name.startswith("_") for a in node.names), (path, node.module)
                assert node.module not in (
                    "keystead.core.service",
                    "keystead.core.client",
                    "keystead.core.keystore",
                ), (path, node.module)
