"""The relying party's pin store and URL policy, without a service (the chain checks run
against real services in tests/integration/second_factor/test_confirm_pins.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from keystead.adapters.second_factor import RelyingPartyClient
from keystead.adapters.second_factor._pins import (
    AccountPin,
    PinStore,
    check_service_url,
    default_pin_folder,
    service_origin,
)
from keystead.core import FormatError

TOKEN = "bank.example:" + "A" * 43


@pytest.mark.parametrize(
    "url",
    [
        "https://keys.example.com",
        "https://10.0.0.1:8443/prefix",
        "http://127.0.0.1:8000",
        "http://127.8.9.10",
        "http://[::1]:8000",
        "http://localhost:8000",
        "http://LOCALHOST",
        "http://[::ffff:127.0.0.1]:80",
    ],
)
def test_allowed_urls(url: str) -> None:
    assert check_service_url(url) == url


@pytest.mark.parametrize(
    "url",
    [
        "http://keys.example.com",
        "http://10.0.0.1:8000",
        "http://0.0.0.0:8000",
        "http://[::ffff:10.0.0.1]:80",
        "http://localhost.example.com",
        "http://128.0.0.1",
    ],
)
def test_plain_http_off_loopback_is_refused_unless_allowed(url: str) -> None:
    with pytest.raises(ValueError, match="refusing plain http"):
        check_service_url(url)
    assert check_service_url(url, insecure_http=True) == url


@pytest.mark.parametrize("url", ["ftp://127.0.0.1", "127.0.0.1:8000", "https://", "http://h:x"])
def test_not_a_service_url(url: str) -> None:
    with pytest.raises(ValueError):
        check_service_url(url, insecure_http=True)


def test_one_origin_however_the_url_is_written() -> None:
    same = {
        service_origin(u)
        for u in [
            "https://Keys.Example.com",
            "https://keys.example.com/",
            "https://keys.example.com:443",
        ]
    }
    assert same == {"https://keys.example.com:443"}
    assert service_origin("http://[::1]:8000/x/") == "http://[::1]:8000/x"
    assert service_origin("http://127.0.0.1") != service_origin("https://127.0.0.1")


def test_pin_files_are_per_service_and_account(tmp_path: Path) -> None:
    store = PinStore(tmp_path)
    a = store.file("https://keys.example.com", "alice")
    assert a == store.file("https://KEYS.example.com:443/", "alice")
    assert a != store.file("https://keys.example.com", "bob")
    assert a != store.file("https://other.example.com", "alice")
    assert store.get("https://keys.example.com", "alice") is None


def _pin(**changes: object) -> dict[str, object]:
    obj: dict[str, object] = {
        "v": 1,
        "service": "https://keys.example.com:443",
        "account": "alice",
        "account_key": "SHA256:" + "k" * 43,
        "seq": 3,
        "head": "ab" * 32,
        "pinned": 1,
        "updated": 2,
    }
    obj.update(changes)
    return {k: v for k, v in obj.items() if v is not None}


def test_pin_round_trip_and_strict_parsing() -> None:
    pin = AccountPin.from_json(_pin())
    assert AccountPin.from_json(pin.to_json()) == pin
    for bad in [
        _pin(v=2),
        _pin(seq=-1),
        _pin(seq=True),
        _pin(seq="3"),
        _pin(head=""),
        _pin(extra=1),
        _pin(updated=None),
        [],
        "pin",
    ]:
        with pytest.raises(FormatError):
            AccountPin.from_json(bad)


def test_a_damaged_or_misplaced_pin_is_refused_not_replaced(tmp_path: Path) -> None:
    store = PinStore(tmp_path)
    file = store.file("https://keys.example.com", "alice")
    file.write_text("{not json")
    with pytest.raises(FormatError, match="damaged"):
        store.get("https://keys.example.com", "alice")
    file.write_text(json.dumps(_pin(account="bob")))  # copied from another pin's file
    with pytest.raises(FormatError, match="another service or account"):
        store.get("https://keys.example.com", "alice")
    file.write_text(json.dumps(_pin()))
    got = store.get("https://keys.example.com", "alice")
    assert got is not None and got.seq == 3


def test_the_relying_party_must_pin_and_must_not_use_plain_http(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="must pin"):
        RelyingPartyClient("https://keys.example.com", "alice", TOKEN)
    with pytest.raises(ValueError, match="refusing plain http"):
        RelyingPartyClient("http://keys.example.com", "alice", TOKEN, pins=tmp_path)
    RelyingPartyClient(
        "http://keys.example.com", "alice", TOKEN, pins=tmp_path, insecure_http=True
    ).close()
    RelyingPartyClient(
        "https://keys.example.com", "alice", TOKEN, fingerprint="SHA256:" + "k" * 43
    ).close()


def test_default_folder_follows_keystead_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KEYSTEAD_HOME", str(tmp_path))
    assert default_pin_folder() == tmp_path / "rp-pins"
    monkeypatch.delenv("KEYSTEAD_HOME")
    assert default_pin_folder().name == "rp-pins" and "keystead" in str(default_pin_folder())
