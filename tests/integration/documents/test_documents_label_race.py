"""Two admin devices name the same new label at the same moment: one label, one key.

A label's key is an opaque id, so the name alone no longer makes two creations collide in
the chain: the name record (one item, written with optimistic versioning before the key
is created) has to. Six ``doc protect --label`` runs at once, three on each of two admin
devices, must leave exactly one documents key, named once in the record, and every
document must open.
"""

from __future__ import annotations

import base64
import json
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

from keystead.core.testing import CLI

LABEL = "q3-board"


def test_six_parallel_first_protects_make_one_label(
    make_account: Any, service: Any, tmp_path: Path
) -> None:
    alice = make_account("alice")
    tablet = alice.join("tablet", role="admin")
    runs = []
    for i, home in enumerate([alice.admin, tablet] * 3):
        src = tmp_path / f"doc{i}.txt"
        src.write_text(f"document {i}")
        runs.append(
            subprocess.Popen(
                [*CLI, "doc", "protect", str(src), "--label", LABEL],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
                env=home.env(),
            )
        )
    errors = [proc.communicate(timeout=300)[1] for proc in runs]  # all finished first
    assert [p.returncode for p in runs] == [0] * 6, errors
    req = urllib.request.Request(
        f"{service.url}/v1/accounts/{alice.name}/chain", headers={"keystead-protocol": "2"}
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        entries = json.loads(resp.read())["entries"]
    bodies = [
        json.loads(base64.urlsafe_b64decode(e["entry"] + "=" * (-len(e["entry"]) % 4)))
        for e in entries
    ]
    keys = [
        b["body"]["name"]
        for b in bodies
        if b["type"] == "collection-created" and b["body"]["name"].startswith("documents/")
    ]
    assert len(keys) == 1, keys
    labels = alice.admin.json("doc", "labels", "--json")
    assert [row["label"] for row in labels] == [LABEL]
    for i in range(6):
        out = tmp_path / f"out{i}.txt"
        alice.admin.run("doc", "open", str(tmp_path / f"doc{i}.txt.kst"), "-o", str(out))
        assert out.read_text() == f"document {i}"
