"""The world of test_revocation.py: what its accounts write (one canary per kind, tagged
by phase, through the real CLI), and what the attacker tries beyond reading, built from the
docs: writes sealed under a stale epoch, writes from another account, a direct message and
a confirmation prompt sealed to the old epoch, and chain entries forged with a removed
admin's old account key."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import shutil
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import umbral_pre
from adversary import Snapshot, b64d, copy_database, open_keystore
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)
from forger import b64e, seal_item, signed_post, stale_message
from keystead.core.testing import DeviceHome


def tag(name: str) -> str:
    return f"CANARY-{name}-{secrets.token_hex(6)}"


@dataclass
class World:
    """What the scenario leaves behind for the attacker, and the canaries it wrote."""

    tmp: Path
    db: Path
    snapshots: list[Snapshot] = field(default_factory=list)
    documents: list[Path] = field(default_factory=list)
    canaries: dict[str, list[str]] = field(default_factory=dict)
    keystores: dict[str, tuple[Path, str]] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)

    def snapshot(self, name: str) -> None:
        path = self.tmp / f"db-{name}.sqlite"
        copy_database(self.db, path)
        self.snapshots.append(Snapshot.load(name, path))

    def canary(self, phase: str, name: str) -> str:
        value = tag(name)
        self.canaries.setdefault(phase, []).append(value)
        return value

    def keep_keystore(self, device: str, home: Any) -> None:
        dst = self.tmp / f"stolen-{device}.json"
        shutil.copy(home.path / "keystore.json", dst)
        self.keystores[device] = (dst, home.passphrase)


def password(world: World, phase: str, home: Any, name: str) -> None:
    value = world.canary(phase, name)
    home.run(
        "passwords", "add", f"https://{name.lower()}.example", "-u", "alice", input=value + "\n"
    )


def totp(world: World, phase: str, home: Any, name: str) -> None:
    issuer = world.canary(phase, name)
    secret = base64.b32encode(secrets.token_bytes(20)).decode().rstrip("=")
    home.run("totp", "add", f"otpauth://totp/{issuer}:alice?secret={secret}&issuer={issuer}")


def document(world: World, phase: str | None, home: Any, name: str, label: str) -> Path:
    value = world.canary(phase, name) if phase else tag(name)
    src = world.tmp / f"{name}.txt"
    src.write_text(value)
    home.run("doc", "protect", str(src), "--label", label)
    out = world.tmp / f"{name}.txt.kst"
    world.documents.append(out)
    if phase is None:
        world.notes[name] = value
    return out


def ssh_key(world: World, phase: str, home: Any, name: str, *, check: bool = True) -> Any:
    """An imported SSH private key (an admin-only item of ``ssh``), its comment the canary;
    with ``check=False`` a failed import is returned and leaves no canary."""
    path = world.tmp / f"{name}.pem"
    path.write_bytes(
        Ed25519PrivateKey.generate().private_bytes(
            Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
        )
    )
    comment = world.canary(phase, name)
    proc = home.run("ssh", "import", str(path), "--comment", comment, check=check)
    if proc.returncode != 0:
        world.canaries[phase].remove(comment)
    return proc


def message(world: World, phase: str, home: Any, to: str, name: str) -> None:
    home.run("msg", "send", to, world.canary(phase, name))


def group_message(world: World, phase: str, home: Any, group: str, name: str) -> None:
    home.run("msg", "group", "send", group, world.canary(phase, name))


def stale_writes(url: str, account: str, removed: Any, live: Any) -> dict[str, int]:
    """Right after the removal, items sealed under the old epoch's data key (which the
    removed device holds): by a live device (a writer whose chain predates the removal)
    and by the removed device itself. Built and signed from the docs, sent raw."""
    gone = open_keystore(removed.path / "keystore.json", removed.passphrase)
    old_key = b64d(gone["epoch_keys"]["passwords:1"])
    path = f"/v1/accounts/{account}/collections/passwords/items"
    out = {}
    for name, home in (("live", live), ("removed", removed)):
        device, seed = device_of(home)
        for epoch in (1, 2):
            item = seal_item(
                old_key,
                account=account,
                collection="passwords",
                item_id=f"stale-{name}-{epoch}",
                version=1,
                epoch=epoch,
                plaintext=b"written under the old epoch key",
                writer=device,
                writer_seed=seed,
            )
            status, _ = signed_post(
                url,
                path,
                {"items": [item]},
                account=account,
                device=device,
                seed=seed,
                now=int(time.time()),
            )
            out[f"{name}-epoch-{epoch}"] = status
    return out


def join(
    admin: DeviceHome, account: str, url: str, home: Path, device: str, role: str = "member"
) -> DeviceHome:
    """Join ``device`` through the real pairing flow, approved on ``admin``."""
    new = DeviceHome(home)
    proc = new.spawn("device", "join", account, "--server", url, "--device", device, "--wait", "60")
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("pairing code: "), line
    admin.run("device", "approve", line.split(": ", 1)[1].strip(), "--role", role, "--yes")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and "approved" in out, err
    return new


def device_of(home: Any) -> tuple[str, bytes]:
    """A device's id and signing seed, from its keystore (FORMAT.md)."""
    keys = open_keystore(home.path / "keystore.json", home.passphrase)
    seed = b64d(keys["device"]["signing"])
    pub = (
        Ed25519PrivateKey.from_private_bytes(seed)
        .public_key()
        .public_bytes(Encoding.Raw, PublicFormat.Raw)
    )
    return hashlib.sha256(pub).hexdigest()[:16], seed


def foreign_writes(url: str, alice: str, bob_home: Any, member: Any) -> dict[str, int]:
    """Trust model: another account writes nothing of this account's; a member writes no
    admin-only state. Raw requests built from the docs, each signed by a real device."""
    out = {}
    key = bytes(32)  # the service cannot tell keys apart: only its checks refuse these
    for who, home in (("bob", bob_home), ("member", member)):
        device, seed = device_of(home)
        account = str(json.loads((home.path / "device.json").read_text())["account"])
        for coll in ("passwords", "_account", "_admin"):
            item = seal_item(
                key,
                account=alice,
                collection=coll,
                item_id=f"{who}-{coll}",
                version=1,
                epoch=1,
                plaintext=b"not yours",
                writer=device,
                writer_seed=seed,
            )
            out[f"{who}-{coll}"], _ = signed_post(
                url,
                f"/v1/accounts/{alice}/collections/{coll}/items",
                {"items": [item]},
                account=account,
                device=device,
                seed=seed,
                now=int(time.time()),
            )
        out[f"{who}-bundle"], _ = signed_post(
            url,
            f"/v1/accounts/{alice}/bundle",
            {
                "base": {"seq": 0, "head": ""},
                "entries": [],
                "grants": [],
                "delete_grants": [],
                "items": [],
            },
            account=account,
            device=device,
            seed=seed,
            now=int(time.time()),
        )
    return out


def stale_direct_message(
    w: World, url: str, alice: str, bob: str, bob_home: Any
) -> tuple[int, str]:
    """Bob's device sends alice a message sealed to the epoch of her ``messages`` key that was
    current before the removal (a sender whose copy of alice's chain is stale). Issue 10,
    point 5: the service refuses it (409) and the sender seals again."""
    device, seed = device_of(bob_home)
    host = url.split("//", 1)[1]
    epochs = [
        e["body"]
        for e in w.snapshots[0].chains[alice]
        if e["type"] == "epoch" and e["body"]["collection"] == "messages"
    ]
    text = tag("bob-msg-stale-sender")
    status = stale_message(
        base_url=url,
        sender=f"{bob}@{host}",
        sender_device=device,
        seed=seed,
        recipient=alice,
        recipient_address=f"{alice}@{host}",
        epoch=epochs[-1]["epoch"],
        epoch_key=b64d(epochs[-1]["public_key"]),
        text=text,
        now=int(time.time()),
    )
    return status, text


def stale_prompt(w: World, url: str, alice: str, home: Any) -> tuple[int, str]:
    """A confirmation prompt sealed to the ``confirm`` epoch current before the removal,
    posted by a live device of the account (docs/second_factor.md: RP ``device:NAME``)."""
    device, seed = device_of(home)
    epochs = [
        e["body"]
        for e in w.snapshots[0].chains[alice]
        if e["type"] == "epoch" and e["body"]["collection"] == "confirm"
    ]
    text = tag("prompt-stale-sealer")
    capsule, ct = umbral_pre.encrypt(
        umbral_pre.PublicKey.from_compressed_bytes(b64d(epochs[-1]["public_key"])),
        json.dumps({"message": text}).encode(),
    )
    record = json.dumps(
        {
            "v": 2,
            "owner": alice,
            "key": "confirm",
            "epoch": epochs[-1]["epoch"],
            "capsule": b64e(bytes(capsule)),
            "ciphertext": b64e(bytes(ct)),
        },
        sort_keys=True,
        separators=(",", ":"),
    ).encode()
    now = int(time.time())
    status, _ = signed_post(
        url,
        f"/v1/confirm/{alice}/requests",
        {"v": 1, "id": secrets.token_hex(16), "expires": now + 600, "sealed": b64e(record)},
        account=alice,
        device=device,
        seed=seed,
        now=now,
    )
    return status, text


def forge_with_the_old_key(w: World, url: str, alice: str, laptop: Any) -> dict[str, Any]:
    """The removed admin and a malicious service together: the tablet's old account key
    signs a `device-added` entry for a device of the attacker's, and the service (its
    database written directly) serves it as the chain's next entry. Clients must refuse it:
    after the rotation only the new key signs (PROTOCOL.md 3)."""
    gone = open_keystore(*w.keystores["tablet"])
    secrets_json = json.loads(b64d(gone["secrets"]))
    old_key = Ed25519PrivateKey.from_private_bytes(b64d(secrets_json["account_key"]))
    mine = Ed25519PrivateKey.generate()
    ssh = Ed25519PrivateKey.generate()

    def raw(k: Ed25519PrivateKey) -> bytes:
        return k.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    cj = lambda v: json.dumps(v, sort_keys=True, separators=(",", ":")).encode()  # noqa: E731
    sshd, pins = w.notes["sshd"]
    db = sqlite3.connect(w.db, timeout=30)
    seq, head_raw = db.execute(
        "SELECT seq, entry FROM chain_entries WHERE account=? ORDER BY seq DESC LIMIT 1", (alice,)
    ).fetchone()
    device = {
        "id": hashlib.sha256(raw(mine)).hexdigest()[:16],
        "name": "evil",
        "signing_key": b64e(raw(mine)),
        "pre_key": b64e(bytes(umbral_pre.SecretKey.random().public_key().to_compressed_bytes())),
        "ssh_key": b64e(raw(ssh)),
    }
    entry = cj(
        {
            "v": 2,
            "account": alice,
            "seq": seq + 1,
            "prev": hashlib.sha256(head_raw).hexdigest(),
            "time": int(time.time()),
            "type": "device-added",
            "body": {**device, "role": "admin", "scopes": ["_account", "_admin", "ssh"]},
        }
    )
    sig = old_key.sign(b"keystead/v2/chain/entry\x00" + entry)
    dsig = mine.sign(b"keystead/v2/chain/device-countersign\x00" + cj({"account": alice, **device}))
    with db:
        db.execute(
            "INSERT INTO chain_entries (account, seq, entry, sig, device_sig, "
            "new_key_sig) VALUES (?,?,?,?,?,NULL)",
            (alice, seq + 1, entry, sig, dsig),
        )
    db.close()
    blob = b64std(b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20" + raw(ssh))
    return {
        "blob": blob,
        "pinned": w.notes["sshd-pinned"],
        "sync": laptop.run("sync", check=False),
        "authorized": sshd.run(
            "ssh", "authorized-keys", alice, "--server", url, check=False, env=pins
        ),
    }


def b64std(data: bytes) -> str:
    return base64.b64encode(data).decode()


def db_path(url: str) -> Path:
    assert url.startswith("sqlite:///"), url
    return Path(url[len("sqlite:///") :])
