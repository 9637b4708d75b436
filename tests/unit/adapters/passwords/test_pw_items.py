"""Every item type a manager exports, read as the product writes it and written back exactly."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from keystead.adapters.passwords._entry import Entry
from keystead.adapters.passwords._errors import CannotExport, CannotImport, MalformedFile
from keystead.adapters.passwords.formats import Skips, export_entries, import_entries
from keystead.core.errors import UnsupportedVersion

SAMPLES = Path(__file__).with_name("samples")
NOW = 1_700_000_000_000


def load(fmt: str, name: str, **kw: Any) -> list[Entry]:
    return import_entries(fmt, (SAMPLES / name).read_bytes(), now=NOW, **kw)


def same(a: list[Entry], b: list[Entry]) -> None:
    """Equal but for the item ids (which the import derives afresh)."""
    assert [dataclasses.replace(e, id="x") for e in a] == [
        dataclasses.replace(e, id="x") for e in b
    ]


def test_every_bitwarden_item_type_is_kept_whole() -> None:
    login, note, card, identity, ssh = load("bitwarden-json", "bitwarden-all-types.json")
    assert [e.type for e in (login, note, card, identity, ssh)] == [
        "login",
        "note",
        "card",
        "identity",
        "ssh-key",
    ]
    assert login.other_urls == ("https://www.passkeys.example", "androidapp://example.passkeys")
    assert login.fields == (
        ("PIN", "1234", "hidden"),
        ("plain", "visible", "text"),
        ("remember me", "true", "boolean"),
        ("user again", "100", "linked"),
    )
    [passkey] = login.passkeys
    original = json.loads((SAMPLES / "bitwarden-all-types.json").read_text())
    assert dict(passkey) == original["items"][0]["login"]["fido2Credentials"][0]
    assert dict(passkey)["keyValue"]  # the private key, sealed like every secret
    assert login.history[0].value == "old one" and login.otpauth is not None
    assert card.details_dict["number"] == "4111111111111111"
    assert card.fields[1] == ("card number again", "303", "linked")
    assert identity.details_dict["ssn"] == "078-05-1120"
    assert "middleName" not in identity.details_dict  # null in the file
    assert ssh.details_dict["privateKey"].startswith("-----BEGIN OPENSSH PRIVATE KEY-----")


def test_bitwarden_json_round_trip_is_exact_for_every_type() -> None:
    entries = load("bitwarden-json", "bitwarden-all-types.json")
    data, lost = export_entries("bitwarden-json", entries)
    assert lost == []
    assert json.loads(data) == json.loads((SAMPLES / "bitwarden-all-types.json").read_text())
    same(import_entries("bitwarden-json", data, now=NOW), entries)


def test_vault_bytes_round_trip_every_type() -> None:
    for e in load("bitwarden-json", "bitwarden-all-types.json"):
        assert Entry.from_bytes(e.to_bytes()) == e


def test_two_folders_with_one_name_stay_two() -> None:
    login, note, *_ = load("bitwarden-json", "bitwarden-all-types.json")
    assert login.folder == note.folder == "Work"
    assert login.extras["bitwarden.folderId"] != note.extras["bitwarden.folderId"]
    doc = json.loads(export_entries("bitwarden-json", [login, note])[0])
    assert len(doc["folders"]) == 2
    assert doc["items"][0]["folderId"] != doc["items"][1]["folderId"]


def test_organization_json_keeps_collections() -> None:
    ci, runbook = load("bitwarden-json", "bitwarden-org.json")
    names = [c["name"] for c in json.loads(ci.extras["bitwarden.collections"])]
    assert names == ["Engineering", "Engineering/Ops"]
    data, _ = export_entries("bitwarden-json", [ci, runbook])
    assert json.loads(data) == json.loads((SAMPLES / "bitwarden-org.json").read_text())


def test_organization_csv_is_read_and_written_back() -> None:
    ci, runbook = load("bitwarden-csv", "bitwarden-org.csv")
    assert (ci.username, ci.password, runbook.type) == ("bot", "b0t-pass", "note")
    assert "Engineering/Ops" in ci.extras["bitwarden.collections"]
    data, lost = export_entries("bitwarden-csv", [ci, runbook])
    assert lost == [] and data == (SAMPLES / "bitwarden-org.csv").read_bytes()


def test_pre_2022_bitwarden_csv_without_reprompt_is_read() -> None:
    login, note = load("bitwarden-csv", "bitwarden-2021.csv")
    assert (login.folder, login.password, login.fields) == (
        "Work",
        "secret",
        (("PIN", "1234", "text"),),
    )
    assert note.type == "note" and note.notes == "just text"


def test_json_without_encrypted_key_is_read() -> None:
    doc = json.loads((SAMPLES / "bitwarden.json").read_text())
    del doc["encrypted"]
    a, _ = import_entries("bitwarden-json", json.dumps(doc).encode(), now=NOW)
    assert a.name == "Example"


def test_columns_by_name_in_any_order_and_short_rows() -> None:
    data = b"url,username,password,name,note\nhttps://a.test/,me,pw\nhttps://b.test/,you,pw2,B,n\n"
    a, b = import_entries("chrome", data, now=NOW)
    assert (a.url, a.username, a.password, a.name, a.notes) == (
        "https://a.test/",
        "me",
        "pw",
        "",
        "",
    )
    assert (b.name, b.notes) == ("B", "n")


def test_unknown_column_with_values_is_refused_by_name_or_skipped_and_listed() -> None:
    data = b"name,url,username,password,pin\nA,https://a.test/,me,pw,1234\nB,https://b.test/,u,p,\n"
    with pytest.raises(CannotImport, match="column 'pin'") as e:
        import_entries("chrome", data, now=NOW)
    assert "line 2" in str(e.value)
    skips = Skips(allow=True)
    assert len(import_entries("chrome", data, now=NOW, skips=skips)) == 2
    assert [(x.item, x.field) for x in skips.left] == [("on line 2", "column 'pin'")]


def test_unknown_bitwarden_item_type_and_key_refused_by_name_or_skipped() -> None:
    doc = json.loads((SAMPLES / "bitwarden.json").read_text())
    doc["items"].append({"id": "z", "type": 9, "name": "Future thing"})
    doc["items"][0]["archivedFolder"] = "somewhere"
    raw = json.dumps(doc).encode()
    with pytest.raises(CannotImport, match="archivedFolder"):
        import_entries("bitwarden-json", raw, now=NOW)
    skips = Skips(allow=True)
    kept = import_entries("bitwarden-json", raw, now=NOW, skips=skips)
    assert len(kept) == 2
    assert [(x.item, x.field) for x in skips.left] == [
        ("1 'Example'", "archivedFolder"),
        ("3 'Future thing'", "item"),
    ]


@pytest.mark.parametrize("fmt", ["chrome", "firefox", "keepassxc-csv"])
def test_export_to_a_poorer_format_refuses_or_lists_every_dropped_field(fmt: str) -> None:
    entries = load("bitwarden-json", "bitwarden-all-types.json")
    with pytest.raises(CannotExport, match="other_urls") as e:
        export_entries(fmt, entries)
    assert "Passkey site" in str(e.value) and "--lossy" in str(e.value)
    data, lost = export_entries(fmt, entries, lossy=True)
    by_name = {x.name: fields for x, fields in lost}
    assert {"other_urls", "fields", "passkeys", "history"} <= set(by_name["Passkey site"])
    assert ("totp" in by_name["Passkey site"]) == (fmt != "keepassxc-csv")
    assert by_name["Visa"] == ["type card (the whole entry)"]
    assert b"4111111111111111" not in data
    assert len(import_entries(fmt, data, now=NOW)) == 1  # only the login is written


def test_bitwarden_csv_lists_what_it_cannot_hold() -> None:
    entries = load("bitwarden-json", "bitwarden-all-types.json")
    _, lost = export_entries("bitwarden-csv", entries, lossy=True)
    by_name = {x.name: fields for x, fields in lost}
    assert by_name["Passkey site"] == ["history", "passkeys", "field_kinds"]
    assert "Wifi" not in by_name


def test_entry_v1_is_refused_in_one_line_naming_versions() -> None:
    with pytest.raises(UnsupportedVersion) as e:
        Entry.from_bytes(b'{"v": 1, "entry": {}}')
    assert "version 1" in str(e.value) and "version 2" in str(e.value)
    assert "\n" not in str(e.value)


def test_types_keep_their_own_fields() -> None:
    with pytest.raises(ValueError, match="no URL"):
        Entry(id="x", type="card", url="https://a.test/")
    with pytest.raises(ValueError, match="no detail 'number'"):
        Entry(id="x", type="identity", details=(("number", "1"),))
    with pytest.raises(ValueError, match="type must be"):
        Entry(id="x", type="wallet")
    with pytest.raises(ValueError, match="field kind"):
        Entry(id="x", fields=(("a", "b", "secret"),))


def test_deep_nesting_and_huge_numbers_are_one_line_errors() -> None:
    for raw in (b"[" * 100_000, b'{"items": [], "x": 1' + b"9" * 100_000 + b"}"):
        with pytest.raises(MalformedFile) as e:
            import_entries("bitwarden-json", raw, now=NOW)
        assert "\n" not in str(e.value)
