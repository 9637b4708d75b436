"""keystead doc through the real CLI and a real service process, several accounts and devices.

alice protects files; bob (another account) opens them only while granted; alice's
member device opens with the documents scope; removed devices, revoked and expired
grants are refused, and the owner's audit trail shows every allowed and refused open.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

CONTENT = os.urandom(200_000)  # four 64 KiB chunks


def one_line_error(proc, *words: str) -> None:
    assert proc.returncode != 0, proc.stdout
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("keystead: "), proc.stderr
    assert "Traceback" not in proc.stderr
    for w in words:
        assert w in proc.stderr, proc.stderr


def protect(home, tmp: Path, name: str = "report.pdf", label: str | None = None) -> Path:
    src = tmp / name
    src.write_bytes(CONTENT)
    home.run("doc", "protect", str(src), *(["--label", label] if label else []))
    kst = tmp / f"{name}.kst"
    assert kst.exists() and kst.read_bytes()[:20] == b"keystead-document/2\n"
    return kst


def open_ok(home, kst: Path, out: Path) -> None:
    home.run("doc", "open", str(kst), "-o", str(out))
    assert out.read_bytes() == CONTENT
    assert (out.stat().st_mode & 0o777) == 0o600
    out.unlink()


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_grant_open_revoke_and_audit(make_account, tmp_path):
    alice, bob = make_account("alice"), make_account("bob")
    kst = protect(alice.admin, tmp_path, label="work")
    out = tmp_path / "opened.pdf"

    refused = bob.admin.run("doc", "open", str(kst), "-o", str(out), check=False)
    one_line_error(refused, "no grant")
    assert not out.exists() and leftovers(tmp_path) == []

    alice.admin.run("doc", "grant", "work", bob.name)
    labels = alice.admin.json("doc", "labels", "--json")
    assert labels == [
        {
            "label": "work",
            "grantees": [
                {"account": alice.name, "own": True, "expires": None, "expired": False},
                {"account": bob.name, "own": False, "expires": None, "expired": False},
            ],
        }
    ]
    assert bob.name in alice.admin.run("doc", "labels").stdout
    open_ok(bob.admin, kst, out)

    alice.admin.run("doc", "revoke", "work", bob.name)
    one_line_error(bob.admin.run("doc", "open", str(kst), "-o", str(out), check=False), "no grant")
    assert not out.exists()
    one_line_error(alice.admin.run("doc", "revoke", "work", bob.name, check=False), "no grant")

    doc_id = alice.admin.json("doc", "info", str(kst), "--json")["document_id"]
    bob_dev = bob.admin.json("account", "show", "--json")["device"]["id"]
    records = alice.admin.json("doc", "audit", "--json")
    assert [(r["account"], r["allowed"]) for r in records] == [
        (bob.name, False),
        (bob.name, True),
        (bob.name, False),
    ]
    for r in records:
        assert r["device"] == bob_dev and r["device_name"] == "laptop"
        assert r["label"] == "work" and r["time"].endswith("Z") and r["count"] == 1
    # the open by a grantee names the document it claimed and the capsule it really opened;
    # refusals of a non-grantee are counted, with nothing it chose recorded
    import hashlib

    from keystead.adapters.documents import read_header
    from keystead.core.sealed import SealedKey

    with open(kst, "rb") as f:
        capsule = SealedKey.from_bytes(read_header(f).sealed_key).capsule
    assert records[1]["document_id"] == doc_id
    assert records[1]["capsule_sha256"] == hashlib.sha256(capsule).hexdigest()
    assert [r["document_id"] for r in (records[0], records[2])] == ["", ""]
    assert records[0]["reason"] == "no grant"
    assert alice.admin.json("doc", "audit", "--label", "other", "--json") == []
    text = alice.admin.run("doc", "audit").stdout.splitlines()
    assert len(text) == 3 and "refused" in text[0] and "allowed" in text[1]


def test_owner_devices_need_the_documents_scope(make_account, tmp_path):
    alice = make_account("alice")
    phone = alice.join("phone", scopes=["documents"])
    watch = alice.join("watch", scopes=["passwords"])
    kst = protect(alice.admin, tmp_path)
    out = tmp_path / "out.pdf"
    open_ok(alice.admin, kst, out)
    open_ok(phone, kst, out)
    one_line_error(watch.run("doc", "open", str(kst), "-o", str(out), check=False), "documents")
    # a member can protect under an existing label (its public key is in the chain)...
    kst2 = protect(phone, tmp_path, name="notes.txt")
    open_ok(alice.admin, kst2, out)
    # ...but only an admin creates labels
    one_line_error(
        phone.run(
            "doc",
            "protect",
            str(tmp_path / "notes.txt"),
            "--label",
            "new",
            "-o",
            str(tmp_path / "x.kst"),
            check=False,
        ),
        "admin",
    )
    phone_id = phone.json("account", "show", "--json")["device"]["id"]
    records = alice.admin.json("doc", "audit", "--json")
    assert [(r["device"], r["allowed"]) for r in records] == [(phone_id, True)]
    # The service enforces the scope too: a client that skips its own check is refused.
    from keystead.adapters.documents import read_header
    from keystead.core import Device, Forbidden, Home
    from keystead.core.sealed import SealedKey

    with open(kst, "rb") as f:
        header = read_header(f)
    with Device.open(Home(watch.path), watch.passphrase) as dev:
        with pytest.raises(Forbidden):
            rec = SealedKey.from_bytes(header.sealed_key)
            dev.reencrypt(
                alice.name, [(rec.key, rec.epoch, rec.capsule)], context=header.document_id.hex()
            )
    refused = alice.admin.json("doc", "audit", "--json")[-1]
    assert not refused["allowed"] and refused["reason"] == "no documents scope"


def test_removed_device_is_refused_and_audited(make_account, tmp_path):
    alice, bob = make_account("alice"), make_account("bob")
    bob_phone = bob.join("phone", scopes=["documents"])
    kst = protect(alice.admin, tmp_path)
    alice.admin.run("doc", "grant", "default", bob.name)
    out = tmp_path / "out.pdf"
    open_ok(bob_phone, kst, out)

    bob.admin.run("device", "remove", "phone")
    one_line_error(bob_phone.run("doc", "open", str(kst), "-o", str(out), check=False), "removed")
    assert not out.exists() and leftovers(tmp_path) == []
    open_ok(bob.admin, kst, out)  # bob's other device still opens

    phone_id = [
        d for d in alice.admin.json("doc", "audit", "--json") if d["device_name"] == "phone"
    ]
    assert [(r["allowed"], r["reason"]) for r in phone_id] == [
        (True, ""),
        (False, "device removed"),
    ]


def test_expired_grant_is_refused(make_account, tmp_path):
    alice, bob = make_account("alice"), make_account("bob")
    kst = protect(alice.admin, tmp_path)
    start = time.time()
    alice.admin.run(
        "doc", "grant", "default", f"{bob.name}@127.0.0.1:{alice.service.port}", "--expires", "8s"
    )
    out = tmp_path / "out.pdf"
    open_ok(bob.admin, kst, out)
    time.sleep(max(0.0, start + 9.5 - time.time()))
    one_line_error(bob.admin.run("doc", "open", str(kst), "-o", str(out), check=False), "no grant")
    [grant] = [
        g for g in alice.admin.json("doc", "labels", "--json")[0]["grantees"] if not g["own"]
    ]
    assert grant["expired"] is True
    assert [(r["allowed"], r["reason"]) for r in alice.admin.json("doc", "audit", "--json")] == [
        (True, ""),
        (False, "grant expired"),
    ]


@pytest.mark.parametrize(
    "args, words",
    [
        (("--expires", "yesterday"), ("expiry",)),
        (("--expires", "2001-01-01"), ("not in the future",)),
    ],
)
def test_grant_input_errors(make_account, args, words):
    alice = make_account("alice")
    one_line_error(alice.admin.run("doc", "grant", "default", "nobody", *args, check=False), *words)


def test_info_needs_no_device(make_account, tmp_path):
    alice = make_account("alice")
    kst = protect(alice.admin, tmp_path, label="hr")
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYSTEAD_")}
    env["HOME"] = str(tmp_path / "nobody")  # no home, no keystore, no passphrase
    info = alice.admin.run("doc", "info", str(kst), "--json", env=env)
    data = __import__("json").loads(info.stdout)
    assert data["owner"] == f"{alice.name}@127.0.0.1:{alice.service.port}"
    assert data["label"] == "hr" and data["service"] == alice.service.url
    assert data["size"] == len(CONTENT) and data["file_size"] == kst.stat().st_size
    assert data["created"].endswith("Z") and len(data["document_id"]) == 32
    assert "owner" in alice.admin.run("doc", "info", str(kst), env=env).stdout


def _chunks(kst: Path) -> tuple[bytes, list[bytes]]:
    from keystead.adapters.documents import TAG_SIZE, read_header

    with open(kst, "rb") as f:
        header = read_header(f)
        body = f.read()
    n = header.chunk_size + TAG_SIZE
    return header.to_bytes(), [body[i : i + n] for i in range(0, len(body), n)]


def _tamper(kst: Path, other: Path, how: str) -> bytes:
    head, chunks = _chunks(kst)
    data = kst.read_bytes()
    if how == "truncated":
        return data[:-1000]
    if how == "cut at a chunk":
        return head + b"".join(chunks[:-1])
    if how == "extra bytes":
        return data + b"\0"
    if how == "reordered":
        return head + b"".join([chunks[1], chunks[0], *chunks[2:]])
    if how == "duplicated":
        return head + b"".join([chunks[0], *chunks])
    if how == "flipped bit":
        return (
            data[: len(head) + 5000]
            + bytes([data[len(head) + 5000] ^ 1])
            + data[len(head) + 5001 :]
        )
    if how == "other header":
        return _chunks(other)[0] + b"".join(chunks)
    if how == "unknown version":
        return b"keystead-document/3\n" + data[20:]
    if how == "not a document":
        return b"%PDF-1.7\n" + data[9:]
    raise AssertionError(how)


CASES = {
    "truncated": "authenticate",
    "cut at a chunk": "authenticate",
    "extra bytes": "authenticate",
    "reordered": "authenticate",
    "duplicated": "authenticate",
    "flipped bit": "authenticate",
    "other header": "authenticate",
    "unknown version": "version",
    "not a document": "not a Keystead document",
}


def test_bad_documents_are_one_line_errors(make_account, tmp_path):
    alice = make_account("alice")
    kst = protect(alice.admin, tmp_path)
    other = protect(alice.admin, tmp_path, name="other.pdf")
    work = tmp_path / "bad"
    work.mkdir()
    for how, word in CASES.items():
        bad = work / "bad.kst"
        bad.write_bytes(_tamper(kst, other, how))
        proc = alice.admin.run("doc", "open", str(bad), check=False)
        one_line_error(proc, word)
        assert sorted(p.name for p in work.iterdir()) == ["bad.kst"], how  # nothing left behind
    one_line_error(
        alice.admin.run("doc", "open", str(tmp_path / "missing.kst"), check=False), "missing.kst"
    )
    one_line_error(
        alice.admin.run("doc", "open", str(kst), "-o", str(tmp_path / "other.pdf"), check=False),
        "exists",
    )
    one_line_error(
        alice.admin.run("doc", "protect", str(tmp_path / "report.pdf"), check=False), "exists"
    )
    (tmp_path / "report.pdf").unlink()
    alice.admin.run("doc", "open", str(kst))  # default target: FILE without .kst
    assert (tmp_path / "report.pdf").read_bytes() == CONTENT
    one_line_error(
        alice.admin.run(
            "doc",
            "protect",
            str(tmp_path / "report.pdf"),
            "--label",
            "Bad Label",
            "-o",
            str(tmp_path / "y.kst"),
            check=False,
        ),
        "invalid label",
    )


def test_refused_requests_cannot_flood_the_audit_trail(make_account, tmp_path):
    """Mallory (no grant) fires many re-encryption requests naming a made-up document; the
    owner's trail keeps one counted row for them, and bob's real open stays in view."""
    from keystead.adapters.documents import read_header
    from keystead.core import Device, Forbidden, Home

    alice, bob, mallory = make_account("alice"), make_account("bob"), make_account("mallory")
    kst = protect(alice.admin, tmp_path)
    alice.admin.run("doc", "grant", "default", bob.name)
    open_ok(bob.admin, kst, tmp_path / "out.pdf")
    from keystead.core.sealed import SealedKey

    with open(kst, "rb") as f:
        rec = SealedKey.from_bytes(read_header(f).sealed_key)
    flood = 120
    with Device.open(Home(mallory.admin.path), mallory.admin.passphrase) as dev:
        dev.chain()
        for _ in range(flood):
            with pytest.raises(Forbidden):
                dev.reencrypt(alice.name, [(rec.key, rec.epoch, rec.capsule)], context="f" * 32)
    records = alice.admin.json("doc", "audit", "--json")
    assert [(r["account"], r["allowed"], r["count"]) for r in records] == [
        (bob.name, True, 1),
        (mallory.name, False, flood),
    ]
    assert records[1]["document_id"] == ""  # what mallory claimed is not recorded
    # filters and pages
    assert [
        r["account"] for r in alice.admin.json("doc", "audit", "--outcome", "refused", "--json")
    ] == [mallory.name]
    assert [
        r["account"] for r in alice.admin.json("doc", "audit", "--grantee", bob.name, "--json")
    ] == [bob.name]
    first = alice.admin.run("doc", "audit", "--limit", "1", "--json")
    assert f"--after {records[0]['id']}" in first.stderr
    rest = alice.admin.json("doc", "audit", "--after", str(records[0]["id"]), "--json")
    assert [r["id"] for r in rest] == [records[1]["id"]]


def test_cross_account_opens_need_the_documents_scope(make_account, tmp_path):
    """A grant to bob's account serves only bob's devices with the documents scope."""
    alice, bob = make_account("alice"), make_account("bob")
    ssh_only = bob.join("sshbox", scopes=["ssh"])
    kst = protect(alice.admin, tmp_path)
    alice.admin.run("doc", "grant", "default", bob.name)
    out = tmp_path / "out.pdf"
    one_line_error(ssh_only.run("doc", "open", str(kst), "-o", str(out), check=False), "no grant")
    assert not out.exists()
    open_ok(bob.admin, kst, out)  # bob's admin laptop has every scope
    reasons = [r["reason"] for r in alice.admin.json("doc", "audit", "--json")]
    assert reasons == ["no documents scope", ""]
