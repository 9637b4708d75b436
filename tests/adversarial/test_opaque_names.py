"""Label and group names never reach the service or the public chain; members still see them.

Alice names a documents label and a messaging group with distinctive names, grants the label
to bob and adds him to the group, and joins a member device. The
attacker is the service's operator (every row of every table of its database) and anyone on
the network (the chain, which the service hands to whoever asks, without authentication).
Neither may find either name, in the clear or inside any base64 or JSON it can decode. The
people who should see the names do: alice's devices in ``account show``, ``device list``,
``doc labels`` and ``doc audit``; bob in his inbox and when he sends to the group by name.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

LABEL = "zanzibar-merger-plans"
GROUP = "project-quetzal"
SECRETS = (LABEL, GROUP)
_B64 = re.compile(rb"[A-Za-z0-9_+/=-]{12,}")


def _forms(value: bytes, depth: int = 0) -> Iterator[bytes]:
    """``value`` and everything the attacker can decode out of it: base64 (both alphabets),
    and again inside what that decodes to (JSON strings are covered: they are substrings)."""
    yield value
    if depth >= 3:
        return
    for token in _B64.findall(value):
        for alphabet in (base64.urlsafe_b64decode, base64.b64decode):
            try:
                decoded = alphabet(token + b"=" * (-len(token) % 4))
            except (binascii.Error, ValueError):
                continue
            yield from _forms(decoded, depth + 1)


def _leaks(value: Any) -> list[str]:
    if value is None or isinstance(value, (int, float, bool)):
        return []
    raw = value if isinstance(value, bytes | bytearray | memoryview) else str(value).encode()
    found = set()
    for form in _forms(bytes(raw)):
        for secret in SECRETS:
            if secret.encode() in form or secret.encode("utf-16-le") in form:
                found.add(secret)
    return sorted(found)


def _database_rows(url: str) -> Iterator[tuple[str, str, Any]]:
    """(table, column, value) for every cell of every table: what the operator has."""
    from sqlalchemy import MetaData, create_engine, select

    engine = create_engine(url)
    try:
        meta = MetaData()
        meta.reflect(engine)
        with engine.connect() as conn:
            for table in meta.sorted_tables:
                for row in conn.execute(select(table)):
                    for column, value in zip(table.columns.keys(), row, strict=True):
                        yield table.name, column, value
    finally:
        engine.dispose()


def _public_chain(url: str, account: str) -> bytes:
    """The chain as anyone on the network gets it: no account, no signature."""
    req = urllib.request.Request(
        f"{url}/v1/accounts/{account}/chain", headers={"keystead-protocol": "2"}
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        body: bytes = resp.read()
    return body


def test_no_label_or_group_name_at_the_service_or_in_the_chain(
    make_account: Any, service: Any, tmp_path: Path
) -> None:
    alice, bob = make_account("alice"), make_account("bob")
    admin = alice.admin
    bob_addr = f"{bob.name}@{service.url.split('//', 1)[1]}"
    src = tmp_path / "plans.txt"
    src.write_text("the merger")
    admin.run("doc", "protect", str(src), "--label", LABEL)
    admin.run("doc", "grant", LABEL, bob_addr)
    admin.run("msg", "group", "create", GROUP)
    admin.run("msg", "group", "add", GROUP, bob.name)
    admin.run("msg", "group", "send", GROUP, "hello group")
    phone = alice.join("phone", scopes=["documents", "messages"])
    bob.admin.run("doc", "open", str(tmp_path / "plans.txt.kst"), "-o", str(tmp_path / "b.txt"))
    bob.admin.run("msg", "group", "send", f"{GROUP}@{alice.name}", "bob here")

    # ---- the attacker: the service's whole database, and the chain as anyone gets it
    cells = 0
    for table, column, value in _database_rows(service.database_url):
        cells += 1
        assert not _leaks(value), f"{table}.{column} reveals {_leaks(value)}"
    assert cells > 100  # the database really was read
    chain = _public_chain(service.url, alice.name)
    entries = json.loads(chain)["entries"]
    assert len(entries) > 5 and not _leaks(chain)
    created = [
        json.loads(base64.urlsafe_b64decode(e["entry"] + "=" * (-len(e["entry"]) % 4)))
        for e in entries
    ]
    names = [e["body"]["name"] for e in created if e["type"] == "collection-created"]
    opaque = [n for n in names if n.startswith(("documents/", "messages/group/"))]
    assert len(opaque) == 2 and all(re.fullmatch(r"[a-z/]+/[0-9a-f]{32}", n) for n in opaque)

    # ---- the members see the names
    shown = admin.json("account", "show", "--json")
    assert {f"documents/{LABEL}", f"messages/group/{GROUP}"} <= set(shown["collections"])
    devices = {d["name"]: d for d in admin.json("device", "list", "--json")}
    assert devices["phone"]["scopes"] == ["documents", "messages"]
    on_phone = phone.json("account", "show", "--json")  # a member device reads the record
    assert {f"documents/{LABEL}", f"messages/group/{GROUP}"} <= set(on_phone["collections"])
    assert not any(re.search(r"[0-9a-f]{32}", c) for c in on_phone["collections"])
    assert LABEL in {row["label"] for row in admin.json("doc", "labels", "--json")}
    audit = admin.json("doc", "audit", "--label", LABEL, "--json")
    assert [r["label"] for r in audit if r["allowed"]] == [LABEL]
    inbox = bob.admin.json("msg", "inbox", "--json")
    assert {m["group"] for m in inbox} == {f"{GROUP}@{alice.name}@{service.url.split('//')[1]}"}
    assert [m["text"] for m in admin.json("msg", "inbox", "--json")] == ["hello group", "bob here"]

    # ---- names stay unique per account
    again = admin.run("msg", "group", "create", GROUP, check=False)
    assert again.returncode == 1 and "already exists" in again.stderr
    admin.run("doc", "protect", str(src), "--label", LABEL, "-o", str(tmp_path / "2.kst"))
    after = [
        n
        for n in (
            json.loads(base64.urlsafe_b64decode(e["entry"] + "=" * (-len(e["entry"]) % 4)))
            for e in json.loads(_public_chain(service.url, alice.name))["entries"]
        )
        if n["type"] == "collection-created"
    ]
    assert len([n for n in after if n["body"]["name"].startswith("documents/")]) == 1
