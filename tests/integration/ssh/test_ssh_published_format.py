"""A list of imported keys stored by an older Keystead (format 1, ``{"doc", "sig"}``, from
before the signed envelope) after the upgrade: refused with one line naming the fix, device
keys still listed, and the admin's next publish counts on from its ``seq``.

A real service process; the format 1 list is put in its database as the older version
stored it, signed by the account's real key; the CLI runs as sshd runs it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from keystead.adapters.ssh._keys import AgentKey, generate_device_key
from keystead.core import Device, b64e, canonical_json
from keystead.core import Home as CoreHome
from keystead.core.service.db import make_engine
from keystead.core.service.store import Store
from test_ssh_authorized_freshness import run_ak

pytestmark = pytest.mark.slow


@pytest.fixture
def acct(make_account: Callable[..., Any]) -> Any:
    return make_account("akformat")


def _stored(acct: Any) -> dict[str, Any]:
    engine = make_engine(acct.service.database_url)
    try:
        raw = Store(engine).record_get(acct.name, "ssh", "published-keys")
    finally:
        engine.dispose()
    assert raw is not None
    value: dict[str, Any] = json.loads(raw)
    return value


def _store_format_1(acct: Any, seq: int, keys: list[str]) -> None:
    """What Keystead before the envelope stored: canonical JSON signed by the account key
    with purpose keystead/v1/ssh/published-keys, wrapped as {"doc", "sig"}."""
    dev = Device.open(CoreHome(acct.admin.path), acct.admin.passphrase)
    try:
        assert dev.secrets is not None
        key = dev.secrets.account_key
    finally:
        dev.close()
    doc = canonical_json(
        {"v": 1, "account": acct.name, "seq": seq, "time": int(time.time()), "keys": keys}
    )
    v1 = {"doc": b64e(doc), "sig": b64e(key.sign("keystead/v1/ssh/published-keys", doc))}
    engine = make_engine(acct.service.database_url)
    try:
        Store(engine).record_put(
            acct.name, "ssh", "published-keys", canonical_json(v1), int(time.time())
        )
    finally:
        engine.dispose()


def _import(acct: Any, tmp_path: Path) -> AgentKey:
    key = generate_device_key("old-laptop")
    key_file = tmp_path / "id_imported"
    key_file.write_bytes(key.private_openssh())
    key_file.chmod(0o600)
    acct.admin.run("ssh", "import", str(key_file))
    return key


def test_a_format_1_list_is_refused_in_one_line_until_an_admin_publishes(
    acct: Any, tmp_path: Path
) -> None:
    imported = _import(acct, tmp_path)
    stored = _stored(acct)
    assert (stored["v"], stored["purpose"], stored["signer"]) == (
        1,
        "keystead/v2/ssh/published-keys",
        "account-key/0",
    )
    # An older Keystead had stored its own list (seq 7) before the upgrade.
    _store_format_1(acct, 7, [imported.public.line()])
    fresh = tmp_path / "cache-fresh"
    before = run_ak(acct, fresh)
    # Device keys still log in; the imported key does not, and stderr says what to do.
    assert before.returncode == 0, before.stderr
    assert before.stdout.splitlines() == [
        line for line in before.stdout.splitlines() if line.endswith(f"{acct.name}:laptop")
    ]
    assert len(before.stdout.splitlines()) == 1
    assert before.stderr.splitlines() == [
        "the imported ssh keys' list is of format 1, which this Keystead no longer reads: "
        "run `keystead ssh publish` on an admin device; listing device keys only until then"
    ]
    # The admin's publish takes the stored format 1 list in its stride: seq counts on.
    out = acct.admin.run("ssh", "publish").stdout
    assert out.strip() == "published 1 imported public key(s)"
    assert set(_stored(acct)) == {"v", "purpose", "signer", "body", "sig"}
    after = run_ak(acct, fresh)
    assert after.returncode == 0 and after.stderr == "", after.stderr
    line = after.stdout.splitlines()[1]
    assert line.split()[1] == imported.public.line().split()[1]
    assert f"keystead:{acct.name}:imported" in line
    from keystead.adapters.ssh._published import published_seq

    assert published_seq(_stored(acct)) == 8
    # A service that puts the format 1 list back (it still names the key) is caught by the
    # reader that verified the newer list: a rollback, no key at all.
    _store_format_1(acct, 7, [imported.public.line()])
    replay = run_ak(acct, fresh)
    assert (replay.returncode, replay.stdout) == (5, ""), replay.stderr
    assert "older list of imported ssh keys" in replay.stderr


def test_an_import_over_a_format_1_list_needs_no_extra_step(acct: Any, tmp_path: Path) -> None:
    """Any publication by an admin device (here ssh import) replaces the format 1 list."""
    _store_format_1(acct, 3, [])
    imported = _import(acct, tmp_path)
    from keystead.adapters.ssh._published import published_seq

    assert published_seq(_stored(acct)) == 4
    listed = run_ak(acct, tmp_path / "cache")
    assert listed.returncode == 0 and listed.stderr == "", listed.stderr
    assert imported.public.line().split()[1] in listed.stdout


def test_a_list_the_account_key_did_not_sign_lists_no_imported_key(
    acct: Any, tmp_path: Path
) -> None:
    """A service (or whoever writes its database) stores a list naming its own key, signed by
    a key of its own under the account's current signer label: readers list device keys only
    and say why, in one line."""
    from keystead.adapters.ssh._published import sign_published
    from keystead.core import SigningKey

    mine = generate_device_key("mallory")
    forged = sign_published(SigningKey(bytes(32)), 0, acct.name, 99, 1, [mine.public])
    engine = make_engine(acct.service.database_url)
    try:
        Store(engine).record_put(
            acct.name, "ssh", "published-keys", canonical_json(forged.to_json()), 1
        )
    finally:
        engine.dispose()
    listed = run_ak(acct, tmp_path / "cache")
    assert listed.returncode == 0, listed.stderr
    assert mine.public.line().split()[1] not in listed.stdout
    assert len(listed.stdout.splitlines()) == 1
    assert listed.stderr.splitlines() == [
        "the imported ssh keys' list does not verify against the account key: "
        "listing device keys only"
    ]
