"""A member device with only the ``ssh`` scope tries to write admin-level ssh state (review
finding #7): a ``@cert-authority *`` line, a wildcard host, an imported key. Every device
ignores those, a plain host line of the member still counts and names its writer, and
nothing the member wrote after its removal is read."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519


def _pub() -> str:
    key = ed25519.Ed25519PrivateKey.generate().public_key()
    return key.public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    ).decode()


def test_member_cannot_write_admin_only_ssh_state(make_account: Callable[..., Any]) -> None:
    acct = make_account("sshm")
    member = acct.join("sshonly", scopes=["ssh"])
    ca, wild, plain = _pub(), _pub(), _pub()
    member.run("ssh", "known-hosts", "add", "*", ca, "--marker", "cert-authority")
    member.run("ssh", "known-hosts", "add", "*.example.com", wild)
    member.run("ssh", "known-hosts", "add", "git.example.org", plain)
    acct.admin.run("ssh", "known-hosts", "sync")
    listed = acct.admin.run("ssh", "known-hosts", "list").stdout
    assert plain.split()[1] in listed  # the member's own host line counts...
    assert ca.split()[1] not in listed and wild.split()[1] not in listed  # ...not a CA or *
    # The same lines written by the admin count (so the test can fail the other way too).
    acct.admin.run("ssh", "known-hosts", "add", "*.example.net", wild)
    acct.admin.run("ssh", "known-hosts", "sync")
    assert wild.split()[1] in acct.admin.run("ssh", "known-hosts", "list").stdout
    # Every item names its writer: the service stores who wrote what.
    sync = json.loads(acct.admin.run("sync", "--json").stdout)
    assert sync["collections"]["ssh"]["unreadable"] == []
