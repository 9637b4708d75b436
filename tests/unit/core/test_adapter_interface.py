"""The adapter interface: declarations, capabilities, named services, broken adapters."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from keystead.core.adapter import (
    Channel,
    HasQuickCommands,
    HasResolver,
    Poster,
    channel_policies,
    check_adapter,
    discover,
)
from keystead.core.capabilities import (
    AdapterCapabilities,
    Confirmer,
    ServiceCapabilities,
    ServiceUnavailable,
    provider_of,
)
from keystead.core.errors import Forbidden


def test_a_channel_says_who_may_post_and_fails_closed() -> None:
    with pytest.raises(ValueError):
        Channel("confirm", frozenset())
    with pytest.raises(ValueError):
        Channel("a/b", frozenset({Poster.SERVICE}))
    confirm = Channel("confirm", frozenset({Poster.SERVICE, Poster.RELYING_PARTY}))
    assert not confirm.accepts_device(own=True) and not confirm.accepts_device(own=False)
    inbox = Channel("messages", frozenset({Poster.OTHER_ACCOUNTS}))
    assert inbox.accepts_device(own=False) and not inbox.accepts_device(own=True)


def test_the_installed_adapters_declare_their_channels() -> None:
    adapters = discover()
    assert {"ssh", "passwords", "second_factor", "documents", "messaging"} <= set(adapters)
    policies = channel_policies(adapters)
    assert not policies["confirm"].accepts_device(own=False)
    assert not policies["confirm"].accepts_device(own=True)
    # the messaging routes do all posting to the spool: no device posts there directly
    assert not policies["messages"].accepts_device(own=False)
    assert not policies["messages"].accepts_device(own=True)
    assert Poster.SERVICE in policies["messages"].posters
    assert isinstance(adapters["passwords"], HasQuickCommands)
    assert isinstance(adapters["passwords"], HasResolver)
    assert not isinstance(adapters["ssh"], HasResolver)


def test_a_named_service_comes_from_its_provider_or_a_clear_error() -> None:
    adapters = discover()
    ssh = adapters["ssh"]
    without = {k: v for k, v in adapters.items() if k != "second_factor"}
    with pytest.raises(ServiceUnavailable) as e:
        provider_of(Confirmer, without, wanted_by="ssh")
    assert "Confirmer" in str(e.value) and "'ssh'" in str(e.value)
    assert provider_of(Confirmer, adapters) is adapters["second_factor"]
    caps = AdapterCapabilities(object(), ssh, adapters)  # type: ignore[arg-type]
    assert isinstance(caps.service(Confirmer), Confirmer)
    with pytest.raises(ServiceUnavailable):
        AdapterCapabilities(object(), ssh, without).service(Confirmer)  # type: ignore[arg-type]


def test_capabilities_cover_only_what_was_declared() -> None:
    adapters = discover()
    caps = AdapterCapabilities(object(), adapters["ssh"], adapters)  # type: ignore[arg-type]
    for ask in (
        lambda: caps.collection("passwords"),
        lambda: caps.channel("confirm"),
        lambda: caps.keystore_slot(),
        lambda: caps.routes().request("GET", "confirm"),
    ):
        with pytest.raises(Forbidden):
            ask()

    class _Ctx:
        store = None

    svc = ServiceCapabilities(_Ctx(), adapters["second_factor"])  # type: ignore[arg-type]
    svc.records("confirm.rp")  # declared ("confirm" covers "confirm.*")
    with pytest.raises(Forbidden):
        svc.records("ssh")
    with pytest.raises(Forbidden):
        svc.channel("messages")


class _NotAnAdapter:
    name = "x"


def test_check_adapter_says_why() -> None:
    assert "missing collections, commands, cli_groups" in (check_adapter(_NotAnAdapter()) or "")


def test_a_broken_adapter_is_reported_in_one_line_and_the_rest_still_work(tmp_path: Path) -> None:
    dist = tmp_path / "broken_adapters-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-adapters\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[keystead.adapters]\nghost = keystead_no_such_module:adapter\nplain = json:dumps\n"
    )
    env: dict[str, Any] = {**os.environ, "PYTHONPATH": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-m", "keystead.core.cli", "--help"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 2, proc.stderr
    assert lines[0].startswith("keystead: adapter 'ghost' is not loaded: ModuleNotFoundError")
    assert lines[1].startswith("keystead: adapter 'plain' is not loaded: it does not implement")
    for command in ("ssh", "passwords", "confirm", "doc", "msg"):
        assert command in proc.stdout
