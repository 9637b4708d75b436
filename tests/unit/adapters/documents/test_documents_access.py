"""The pure parts of the wiring: label names, expiry parsing, owner/service agreement."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from keystead.adapters.documents import Header
from keystead.adapters.documents._access import check_label, is_label_key, owner_of, parse_expires
from keystead.core import FormatError

NOW = 1_700_000_000


@pytest.mark.parametrize(
    "text, seconds",
    [
        ("90s", 90),
        ("30m", 1800),
        ("12h", 43200),
        ("7d", 604800),
        ("2w", 1209600),
    ],
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_expires(text, now=NOW) == NOW + seconds


def test_iso_dates_are_utc_unless_zoned() -> None:
    assert parse_expires("2030-01-02", now=NOW) == int(datetime(2030, 1, 2, tzinfo=UTC).timestamp())
    assert parse_expires("2030-01-02T03:04:05Z", now=NOW) == int(
        datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC).timestamp()
    )
    assert parse_expires("2030-01-02T05:04:05+02:00", now=NOW) == int(
        datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC).timestamp()
    )


@pytest.mark.parametrize("text", ["", "0d", "7", "d", "-1d", "1y", "soon", "2001-01-01"])
def test_bad_or_past_expiries(text: str) -> None:
    with pytest.raises(FormatError):
        parse_expires(text, now=NOW)


def test_labels() -> None:
    assert check_label("default") == "default" and check_label("hr/2024_q1") == "hr/2024_q1"
    # a label's key is an opaque id: its name is never a collection name
    assert is_label_key("documents/" + "0a" * 16)
    assert not is_label_key("documents/hr") and not is_label_key("passwords")
    for bad in ("", "Work", "1st", "a b", "x" * 119, "é"):
        with pytest.raises(FormatError):
            check_label(bad)


def _header(owner: str, url: str) -> Header:
    return Header.new(owner=owner, label="l", service_url=url, sealed_key=b"c" * 300)


def test_owner_must_name_the_service_host() -> None:
    assert owner_of(_header("alice@example.org:8470", "https://example.org:8470")) == (
        "alice",
        "https://example.org:8470",
    )
    with pytest.raises(FormatError):
        owner_of(_header("alice@example.org", "https://evil.example"))
