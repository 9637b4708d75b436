"""Lookups: exact URL, then origin, then registrable domain (public-suffix aware)."""

from __future__ import annotations

import pytest
from keystead.adapters.passwords._entry import Entry
from keystead.adapters.passwords._match import (
    MatchKind,
    find_matches,
    parse_origin,
    registrable_domain,
)

E = [
    Entry(id="login", url="https://example.co.uk/login?x=1"),
    Entry(id="root", url="https://EXAMPLE.co.uk:443/"),
    Entry(id="www", url="https://www.example.co.uk/"),
    Entry(id="other", url="https://other.co.uk/"),
    Entry(id="alice", url="https://alice.github.io/"),
    Entry(id="plain", url="http://example.co.uk/"),
    Entry(id="multi", url="https://nowhere.test/", other_urls=("https://example.co.uk/login?x=1",)),
    Entry(id="bare", url="shop.example.co.uk"),
    Entry(id="ftp", url="ftp://example.co.uk/"),
    Entry(id="junk", url="https://[::1"),
]


def found(url: str, **kw: object) -> list[tuple[str, str]]:
    return [(m.entry.id, m.kind.name) for m in find_matches(E, url, **kw)]  # type: ignore[arg-type]


def test_tiers_in_order_and_say_which_matched() -> None:
    assert found("https://example.co.uk/login?x=1#frag") == [
        ("login", "EXACT"),
        ("multi", "EXACT"),
        ("root", "ORIGIN"),
        ("www", "DOMAIN"),
        ("plain", "DOMAIN"),
        ("bare", "DOMAIN"),
    ]
    [m] = [m for m in find_matches(E, "https://example.co.uk/") if m.entry.id == "root"]
    assert m.kind is MatchKind.EXACT and m.url == "https://EXAMPLE.co.uk:443/"


def test_public_suffix_separates_sites() -> None:
    assert found("https://mallory.github.io/") == []
    assert found("https://evil.co.uk/") == []


def test_plain_http_page_never_gets_an_https_password() -> None:
    assert found("http://example.co.uk/") == [("plain", "EXACT")]


def test_tiers_can_be_restricted() -> None:
    assert found("https://www.example.co.uk/a", tiers=[MatchKind.EXACT, MatchKind.ORIGIN]) == [
        ("www", "ORIGIN")
    ]


def test_non_web_pages_match_nothing() -> None:
    assert found("chrome://settings") == [] and found("not a url") == []


def test_registrable_domain() -> None:
    assert registrable_domain("a.b.example.co.uk") == "example.co.uk"
    assert registrable_domain("x.alice.github.io") == "alice.github.io"
    assert registrable_domain("co.uk") is None
    assert registrable_domain("127.0.0.1") is None
    assert registrable_domain("localhost") is None


def test_parse_origin() -> None:
    assert str(parse_origin("https://Example.com")) == "https://example.com"
    assert str(parse_origin("http://127.0.0.1:8080")) == "http://127.0.0.1:8080"
    assert str(parse_origin("https://example.com:443")) == "https://example.com"
    for bad in [
        "https://example.com/",
        "https://example.com/path",
        "ftp://x",
        "https://a@b",
        "null",
        " https://x",
        "https://x?q",
        "https://x:99999",
    ]:
        with pytest.raises(ValueError):
            parse_origin(bad)
