"""core.address: one grammar for name@host[:port], one spelling per account."""

from __future__ import annotations

import pytest
from keystead.core.address import Address, is_loopback_host
from keystead.core.errors import FormatError


@pytest.mark.parametrize(
    "text, name, host, port",
    [
        ("alice@example.org", "alice", "example.org", None),
        ("a.b_c-d@127.0.0.1:8443", "a.b_c-d", "127.0.0.1", 8443),
        ("bob@[::1]:9", "bob", "[::1]", 9),
        ("x@localhost", "x", "localhost", None),
    ],
)
def test_valid_addresses_round_trip(text: str, name: str, host: str, port: int | None) -> None:
    a = Address.parse(text)
    assert (a.name, a.host, a.port) == (name, host, port) and str(a) == text


@pytest.mark.parametrize(
    "text",
    [
        "alice",
        "@example.org",
        "alice@",
        "Alice@example.org",
        "alice+tag@example.org",
        "alice@Example.org",
        "alice@example.org.",
        "alice@example.org:",
        "alice@example.org:0",
        "alice@example.org:65536",
        "alice@example.org:08443",
        "alice@exa mple.org",
        "alice@-x.org",
        "alice@[::1",
        "alice@[zz]",
        "a" * 64 + "@x",
        "alice@" + "h" * 64,
        "alice@x@y",
        "alice@x:1:2",
        "alice@\u0430pple.com",
    ],
)
def test_other_spellings_are_refused(text: str) -> None:
    with pytest.raises(FormatError):
        Address.parse(text)


def test_a_bare_name_takes_the_default_service() -> None:
    assert str(Address.parse("bob", default="http://127.0.0.1:8000/")) == "bob@127.0.0.1:8000"
    assert str(Address.parse("bob", default=Address("a", "h.example"))) == "bob@h.example"
    assert Address.of_service("alice", "https://KS.example").host == "ks.example"
    a = Address.parse("alice@ks.example:8443")
    assert a.same_service("https://ks.example:8443") and not a.same_service("https://ks.example")
    assert a.service_url("http") == "http://ks.example:8443"
    with pytest.raises(FormatError):
        Address.parse(42)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("app.localhost", True),
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("[::1]", True),
        ("::ffff:127.0.0.1", True),
        ("LOCALHOST", True),
        ("localhost.example.com", False),
        ("10.0.0.1", False),
        ("::ffff:10.0.0.1", False),
        ("example.com", False),
        ("", False),
    ],
)
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback
