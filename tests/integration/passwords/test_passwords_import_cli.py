"""Imports from real products through the real CLI: every item type, KeePassXC's own files,
reruns that add nothing, and exports that say what they leave out."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

SAMPLES = Path(__file__).parents[2] / "unit" / "adapters" / "passwords" / "samples"
KEEPASS_XML = Path(__file__).with_name("keepass.xml")
FILE_PW = "file-pw ü"


def _keepassxc(*args: str, stdin: str) -> None:
    subprocess.run(
        ["keepassxc-cli", *args], input=stdin, text=True, check=True, capture_output=True
    )


@pytest.fixture
def kdbx_files(tmp_path: Path) -> dict[str, Path]:
    """A KDBX 3.1 database written by ``keepassxc-cli import``, and a KDBX 4 one that
    ``keepassxc-cli merge`` wrote (into an Argon2 database, which KeePassXC keeps at 4)."""
    if shutil.which("keepassxc-cli") is None:
        pytest.fail("keepassxc-cli is not installed (scripts/test installs it: keepassxc)")
    from pykeepass import create_database

    v3, v4 = tmp_path / "v3.kdbx", tmp_path / "v4.kdbx"
    _keepassxc("import", "-q", "-p", str(KEEPASS_XML), str(v3), stdin=f"{FILE_PW}\n{FILE_PW}\n")
    create_database(str(v4), password=FILE_PW)
    _keepassxc("merge", "-q", "-s", str(v4), str(v3), stdin=f"{FILE_PW}\n")
    assert v3.read_bytes()[8:12] == b"\x01\x00\x03\x00"  # minor 1, major 3
    assert v4.read_bytes()[8:12] == b"\x00\x00\x04\x00"
    return {"3.1": v3, "4": v4}


@pytest.mark.parametrize("version", ["3.1", "4"])
def test_kdbx_written_by_keepassxc_imports_with_every_field(  # type: ignore[no-untyped-def]
    make_account, kdbx_files, version
) -> None:
    a = make_account("kp").admin
    db = kdbx_files[version]
    refused = a.run("passwords", "import", str(db), "--format", "kdbx", input=FILE_PW, check=False)
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1
    assert "'Work/Servers/db01'" in refused.stderr and "attachment 'notes.txt'" in refused.stderr
    assert a.json("passwords", "list", "--json") == []
    wrong = a.run("passwords", "import", str(db), "--format", "kdbx", input="nope", check=False)
    assert wrong.returncode == 1 and "does not open" in wrong.stderr
    out = a.run(
        "passwords", "import", str(db), "--format", "kdbx", "--skip-unsupported", input=FILE_PW
    )
    assert "left out: item 'Work/Servers/db01': attachment 'notes.txt'" in out.stderr
    assert "1 values left out" in out.stderr
    vpn = a.json("passwords", "show", "VPN", "--json")
    assert (vpn["username"], vpn["password"], vpn["url"]) == (
        "alice",
        'pa,ss "q" ü',
        "https://vpn.example.com",
    )
    assert vpn["other_urls"] == ["https://vpn2.example.com"]
    assert vpn["notes"] == "line1\nline2"
    assert vpn["otpauth"].startswith("otpauth://totp/VPN:alice?secret=JBSWY3DPEHPK3PXP")
    assert vpn["fields"] == [
        {"name": "PIN", "value": "1234", "kind": "hidden"},
        {"name": "Realm", "value": "corp", "kind": "text"},
    ]
    assert [h["value"] for h in vpn["history"]] == ["old one"]
    assert (vpn["created"], vpn["updated"]) == (1704067199000, 1706933106000)
    assert set(vpn["extra"]["keepass.tags"].split(";")) == {"work", "vpn"}
    db01 = a.json("passwords", "show", "db01", "--json")
    assert db01["folder"].endswith("Work/Servers") and db01["password"] == "r00t"
    names = {r["name"] for r in a.json("passwords", "list", "--json")}
    if version == "3.1":  # the recycle bin KeePassXC marked as such is not imported
        assert names == {"VPN", "db01"}
    again = a.run(
        "passwords", "import", str(db), "--format", "kdbx", "--skip-unsupported", input=FILE_PW
    )
    assert f"imported 0 new entries from {db.name} ({len(names)} already" in again.stderr


def test_every_bitwarden_item_type_through_the_cli(make_account, tmp_path) -> None:  # type: ignore[no-untyped-def]
    a = make_account("bw").admin
    sample = SAMPLES / "bitwarden-all-types.json"
    out = a.run("passwords", "import", str(sample), "--format", "bitwarden-json")
    assert "imported 5 new entries" in out.stderr
    cards = a.json("passwords", "list", "--type", "card", "--json")
    assert [c["name"] for c in cards] == ["Visa"]
    text = a.run("passwords", "show", "Visa").stdout
    assert "4111111111111111" not in text and "cardholderName: Alice Example" in text
    assert "4111111111111111" in a.run("passwords", "show", "Visa", "--reveal").stdout
    passkey = a.json("passwords", "show", "Passkey site", "--json")["passkeys"][0]
    original = json.loads(sample.read_text())
    assert passkey == original["items"][0]["login"]["fido2Credentials"][0]
    key = a.run("passwords", "show", "deploy key", "--private-key").stdout
    assert (
        key == original["items"][4]["sshKey"]["privateKey"] + "\n"
        or key == original["items"][4]["sshKey"]["privateKey"]
    )
    if shutil.which("ssh-keygen"):
        pem = tmp_path / "key"
        pem.write_text(key)
        pem.chmod(0o600)
        pub = subprocess.run(["ssh-keygen", "-y", "-f", str(pem)], capture_output=True, text=True)
        assert pub.stdout.split()[:2] == original["items"][4]["sshKey"]["publicKey"].split()[:2]
    exported = tmp_path / "back.json"
    a.run("passwords", "export", str(exported), "--format", "bitwarden-json")
    back = json.loads(exported.read_text())
    for doc in (back, original):  # the vault lists by name; Bitwarden by its own order
        doc["items"].sort(key=lambda i: i["id"])
        doc["folders"].sort(key=lambda f: f["id"])
    assert back == original
    chrome = tmp_path / "c.csv"
    refused = a.run("passwords", "export", str(chrome), "--format", "chrome", check=False)
    assert refused.returncode == 1 and "--lossy" in refused.stderr and not chrome.exists()
    lossy = a.run("passwords", "export", str(chrome), "--format", "chrome", "--lossy")
    assert "dropped from 'Passkey site': folder, other_urls, fields, totp, history, passkeys" in (
        lossy.stderr
    )
    assert "dropped from 'Visa': type card (the whole entry)" in lossy.stderr
    assert "exported 1 entries" in lossy.stderr and "4 of them not written" in lossy.stderr


def test_rerun_after_a_lost_answer_adds_nothing(make_account, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The service stores the import but the client never learns it (its home is put
    back as it was before): running the import again finds everything there."""
    a = make_account("rr").admin
    rows = "".join(f"s{i},https://s{i}.test/,u{i},p{i},\n" for i in range(2500))
    csv = tmp_path / "c.csv"
    csv.write_text("name,url,username,password,note\n" + rows)
    before = tmp_path / "before"
    shutil.copytree(a.path, before)
    first = a.run("passwords", "import", str(csv), "--format", "chrome")
    assert "imported 2500 new entries" in first.stderr
    shutil.rmtree(a.path)
    shutil.copytree(before, a.path)  # the answer was lost: the client knows nothing of it
    again = a.run("passwords", "import", str(csv), "--format", "chrome")
    assert "imported 0 new entries from c.csv (2500 already in the vault)" in again.stderr
    assert len(a.json("passwords", "list", "--json")) == 2500
    # the same logins from another product's file are matched by URL, username, password
    ff = tmp_path / "f.csv"
    a.run("passwords", "export", str(ff), "--format", "firefox", "--lossy")
    other = a.run("passwords", "import", str(ff), "--format", "firefox")
    assert "imported 0 new entries" in other.stderr


def test_kdbx_opened_with_a_keepassxc_key_file(make_account, tmp_path) -> None:  # type: ignore[no-untyped-def]
    if shutil.which("keepassxc-cli") is None:
        pytest.fail("keepassxc-cli is not installed (scripts/test installs it: keepassxc)")
    db, key = tmp_path / "kf.kdbx", tmp_path / "kf.key"
    _keepassxc("db-create", "-q", "--set-key-file", str(key), str(db), stdin="")
    base = ["-q", "--no-password", "-k", str(key)]
    _keepassxc("add", *base, "-u", "bob", "--url", "https://kf.test/", "-p", str(db), "Mail",
               stdin="entry-secret\n")  # fmt: skip
    a = make_account("kf").admin
    without = a.run("passwords", "import", str(db), "--format", "kdbx", input="", check=False)
    assert without.returncode == 1 and "does not open" in without.stderr
    a.run("passwords", "import", str(db), "--format", "kdbx", "--key-file", str(key), input="")
    assert a.run("passwords", "get", "https://kf.test/").stdout == "entry-secret\n"


def test_keystead_sync_leaves_the_lookup_index_current(make_account, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A new device's first sync builds the index then, not at its first get."""
    from keystead.adapters.passwords._index import Index
    from keystead.adapters.passwords._vault import Vault
    from keystead.core import Device
    from keystead.core import Home as CoreHome

    acct = make_account("ix")
    csv = tmp_path / "c.csv"
    csv.write_text("name,url,username,password\n" + "".join(
        f"s{i},https://s{i}.test/,u{i},p{i}\n" for i in range(300)
    ))  # fmt: skip
    acct.admin.run("passwords", "import", str(csv), "--format", "chrome")
    phone = acct.join("phone")
    phone.run("sync")
    dev = Device.open(CoreHome(phone.path), phone.passphrase)
    try:
        key = Vault(dev)._index_key()
        index = Index(phone.path / "passwords-index.sqlite", key)
        assert index.cursor == dev.cache.cursor("passwords") > 0
        assert len(index.versions(i.id for i in dev.cache.items("passwords"))) == 300
        index.close()
    finally:
        dev.close()


def test_an_ssh_key_item_moves_into_the_ssh_adapter(make_account) -> None:  # type: ignore[no-untyped-def]
    """`keystead ssh import --from-vault NAME` (through the named service the passwords
    adapter provides; the ssh adapter imports no other adapter), and by a pipe."""
    a = make_account("bwssh").admin
    sample = SAMPLES / "bitwarden-all-types.json"
    a.run("passwords", "import", str(sample), "--format", "bitwarden-json")
    public = json.loads(sample.read_text())["items"][4]["sshKey"]["publicKey"]
    out = a.run("ssh", "import", "--from-vault", "Deploy Key")  # the name in any case
    assert "imported SHA256:" in out.stdout
    listed = a.run("ssh", "keys").stdout
    fingerprint = out.stdout.split()[1]
    assert fingerprint in listed
    served = a.run(
        "ssh",
        "authorized-keys",
        a.json("account", "show", "--json")["account"],
        "--server",
        a.json("account", "show", "--json")["server"],
    ).stdout
    assert public.split()[1] in served
    missing = a.run("ssh", "import", "--from-vault", "no such key", check=False)
    assert missing.returncode != 0 and len(missing.stderr.strip().splitlines()) == 1
    assert "no SSH-key item" in missing.stderr
    both = a.run("ssh", "import", "-", "--from-vault", "deploy key", check=False)
    assert both.returncode != 0 and "one of the two" in both.stderr
