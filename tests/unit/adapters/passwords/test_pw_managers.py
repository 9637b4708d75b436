"""More managers in: LastPass CSV, 1Password .1pux, password-protected Bitwarden JSON, KeePass."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from pathlib import Path
from typing import Any

import pytest
from keystead.adapters.passwords._errors import CannotImport, MalformedFile, WrongFilePassword
from keystead.adapters.passwords.formats import FileSecrets, Skips, import_entries

SAMPLES = Path(__file__).with_name("samples")
NOW = 1_700_000_000_000


def test_lastpass_sites_notes_cards_and_ssh_keys() -> None:
    site, note, card, ssh = import_entries(
        "lastpass-csv", (SAMPLES / "lastpass.csv").read_bytes(), now=NOW
    )
    assert (site.url, site.username, site.password) == (
        "https://example.com/login",
        "alice",
        'pa,ss "q"',
    )
    assert site.folder == "Work/Email" and site.notes == "line1\nline2"
    assert site.otpauth == "otpauth://totp/Example:alice?secret=JBSWY3DPEHPK3PXP"
    assert site.extras["lastpass.fav"] == "1"
    assert (note.type, note.notes) == ("note", "just text")
    assert card.type == "card" and card.details_dict == {
        "brand": "Visa",
        "cardholderName": "Alice Example",
        "code": "123",
        "expMonth": "7",
        "expYear": "2031",
        "number": "4111111111111111",
    }
    assert card.notes == "Language:en-US\nStart Date:,\ncall the bank\nif lost"
    assert ssh.type == "ssh-key"
    assert ssh.details_dict["privateKey"].endswith("-----END OPENSSH PRIVATE KEY-----")
    assert ssh.details_dict["publicKey"] == "ssh-ed25519 AAAAC3Nza bob@host"
    assert "Hostname:db.example.com" in ssh.notes


def test_lastpass_old_header_without_totp() -> None:
    data = b"url,username,password,extra,name,grouping,fav\nhttps://a.test/,me,pw,,A,,0\n"
    [e] = import_entries("lastpass-csv", data, now=NOW)
    assert (e.url, e.otpauth) == ("https://a.test/", None)


def test_1pux_every_category() -> None:
    data = (SAMPLES / "1password.1pux").read_bytes()
    with pytest.raises(CannotImport, match="file 'Recovery / backup file'"):
        import_entries("1pux", data, now=NOW)
    skips = Skips(allow=True)
    login, card, ssh, server = import_entries("1pux", data, now=NOW, skips=skips)
    assert [(x.item, x.field) for x in skips.left] == [
        ("Personal/1 'Example'", "file 'Recovery / backup file'")
    ]
    assert (login.username, login.password, login.url) == (
        "alice",
        'pa,ss "q"',
        "https://example.com/login",
    )
    assert login.other_urls == ("https://example.org",) and login.folder == "Personal"
    assert login.otpauth is not None and "JBSWY3DPEHPK3PXP" in login.otpauth
    assert login.fields == (("remember", "✓", "boolean"), ("PIN", "1234", "hidden"))
    assert [h.value for h in login.history] == ["old one"]
    assert (login.created, login.updated) == (1704067199000, 1706933106000)
    assert card.details_dict == {
        "brand": "visa",
        "cardholderName": "Alice Example",
        "code": "123",
        "expMonth": "7",
        "expYear": "2031",
        "number": "4111111111111111",
    }
    assert card.fields == (("valid from", "2026-07", "text"),)
    assert ssh.details_dict["publicKey"] == "ssh-ed25519 AAAAC3Nza"
    assert ssh.details_dict["privateKey"].startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    assert server.type == "note" and server.notes == "rack 4"
    assert server.fields == (
        ("URL", "db.example.com", "text"),
        ("username", "root", "text"),
        ("password", "r00t", "hidden"),
    )
    assert server.extras["onepassword.state"] == "archived"


def test_1pux_that_is_not_a_zip() -> None:
    with pytest.raises(MalformedFile, match="not a 1PUX"):
        import_entries("1pux", b"PK\x03\x04 nope", now=NOW)


# --- Bitwarden password-protected JSON, made the way Bitwarden makes it ------------------


def _encrypt(enc: bytes, mac: bytes, plain: bytes) -> str:
    from cryptography.hazmat.primitives import padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    iv = os.urandom(16)
    padder = padding.PKCS7(128).padder()
    e = Cipher(algorithms.AES(enc), modes.CBC(iv)).encryptor()
    ct = e.update(padder.update(plain) + padder.finalize()) + e.finalize()
    tag = hmac.new(mac, iv + ct, hashlib.sha256).digest()
    return "2." + "|".join(base64.b64encode(x).decode() for x in (iv, ct, tag))


def protected_export(inner: bytes, password: str, kdf: int) -> bytes:
    """A password-protected export as Bitwarden writes one (salt: 16 random bytes in
    base64, used as text; PinKey derivation; HKDF-Expand stretch; EncString type 2)."""
    salt = base64.b64encode(os.urandom(16)).decode()
    doc: dict[str, Any] = {"encrypted": True, "passwordProtected": True, "salt": salt}
    if kdf == 0:
        doc |= {"kdfType": 0, "kdfIterations": 600_000, "kdfMemory": None, "kdfParallelism": None}
        key = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), 600_000, 32)
    else:
        from argon2.low_level import Type, hash_secret_raw

        doc |= {"kdfType": 1, "kdfIterations": 3, "kdfMemory": 64, "kdfParallelism": 4}
        key = hash_secret_raw(
            password.encode(),
            hashlib.sha256(salt.encode()).digest(),
            time_cost=3,
            memory_cost=64 * 1024,
            parallelism=4,
            hash_len=32,
            type=Type.ID,
        )
    enc = hmac.new(key, b"enc\x01", hashlib.sha256).digest()
    mac = hmac.new(key, b"mac\x01", hashlib.sha256).digest()
    doc["encKeyValidation_DO_NOT_EDIT"] = _encrypt(
        enc, mac, b"6a8f0e1c-aaaa-4bbb-8ccc-1234567890ab"
    )
    doc["data"] = _encrypt(enc, mac, inner)
    return json.dumps(doc, indent=2).encode()


@pytest.mark.parametrize("kdf", [0, 1])
def test_bitwarden_password_protected_json(kdf: int) -> None:
    inner = (SAMPLES / "bitwarden-all-types.json").read_bytes()
    data = protected_export(inner, "file pw ü", kdf)
    asked: list[int] = []

    def password() -> str:
        asked.append(1)
        return "file pw ü"

    got = import_entries("bitwarden-json", data, now=NOW, secrets=FileSecrets(password=password))
    plain = import_entries("bitwarden-json", inner, now=NOW)
    assert [e.name for e in got] == [e.name for e in plain] and asked == [1]
    assert [e.passkeys for e in got] == [e.passkeys for e in plain]
    with pytest.raises(WrongFilePassword) as wrong:
        import_entries("bitwarden-json", data, now=NOW, secrets=FileSecrets(lambda: "nope"))
    assert str(wrong.value) == "the password does not open this Bitwarden export"
    assert import_entries("bitwarden-json", inner, now=NOW, secrets=FileSecrets())  # not asked


def test_bitwarden_protected_with_absurd_kdf_is_refused_before_deriving() -> None:
    doc = json.loads(protected_export(b"{}", "x", 0))
    doc["kdfIterations"] = 10**12
    with pytest.raises(MalformedFile, match="kdfIterations"):
        import_entries(
            "bitwarden-json", json.dumps(doc).encode(), now=NOW, secrets=FileSecrets(lambda: "x")
        )


# --- KeePass through pykeepass (the keepassxc-cli files are in the integration suite) ----


def test_kdbx_with_a_key_file(tmp_path: Path) -> None:
    from pykeepass import create_database

    key = tmp_path / "db.key"
    key.write_bytes(os.urandom(64))
    path = tmp_path / "db.kdbx"
    kp = create_database(str(path), password="pw", keyfile=str(key))
    group = kp.add_group(kp.root_group, "Mail")
    e = kp.add_entry(group, "Inbox", "me", "secret", url="https://mail.test/", notes="n")
    e.set_custom_property("Recovery", "words", protect=True)
    e.otp = "otpauth://totp/Mail:me?secret=JBSWY3DPEHPK3PXP"
    kp.save()
    secrets = FileSecrets(password=lambda: "pw", key_file=key.read_bytes())
    [got] = import_entries("kdbx", path.read_bytes(), now=NOW, secrets=secrets)
    assert (got.folder, got.name, got.username, got.password) == ("Mail", "Inbox", "me", "secret")
    assert got.fields == (("Recovery", "words", "hidden"),)
    assert got.otpauth == "otpauth://totp/Mail:me?secret=JBSWY3DPEHPK3PXP"
    with pytest.raises(WrongFilePassword):
        import_entries("kdbx", path.read_bytes(), now=NOW, secrets=FileSecrets(lambda: "pw"))
    with pytest.raises(MalformedFile, match="KDBX signature"):
        import_entries("kdbx", b"not a database", now=NOW, secrets=secrets)


def test_1pux_url_of_an_item_without_a_url_field_is_kept_as_a_field(tmp_path: Path) -> None:
    import zipfile

    item = {
        "uuid": "srv",
        "createdAt": 1709251200,
        "updatedAt": 1709251200,
        "categoryUuid": "110",
        "details": {"notesPlain": ""},
        "overview": {"title": "db", "url": "https://db.example.com"},
    }
    doc = {"accounts": [{"vaults": [{"attrs": {"name": "V"}, "items": [item]}]}]}
    path = tmp_path / "x.1pux"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("export.data", json.dumps(doc))
    [e] = import_entries("1pux", path.read_bytes(), now=NOW)
    assert e.type == "note" and e.fields == (("url", "https://db.example.com", "text"),)
