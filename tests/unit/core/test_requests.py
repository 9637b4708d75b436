"""Signed requests, without a service: what the signature covers and how headers parse."""

from __future__ import annotations

import pytest
from keystead.core.crypto import SigningKey
from keystead.core.errors import FormatError, InvalidSignature
from keystead.core.requests import (
    HEADER_DEVICE,
    HEADER_NONCE,
    HEADER_SIGNATURE,
    MAX_SKEW,
    origin_of,
    parse_auth,
    sign_request,
)

KEY = SigningKey.generate()
NOW = 1_700_000_000
ARGS = {
    "method": "POST",
    "origin": "https://keystead.example",
    "path": "/v1/accounts/alice/x",
    "body": b'{"a":1}',
}


def signed(**kw: object) -> dict[str, str]:
    return sign_request(KEY, account="alice", device="dev1", time=NOW, **{**ARGS, **kw})  # type: ignore[arg-type]


def check(headers: dict[str, str], **kw: object) -> None:
    auth = parse_auth(headers)
    assert auth is not None
    args = {**ARGS, "now": NOW, **kw}
    auth.verify(KEY.verify_key, **args)  # type: ignore[arg-type]


def test_a_signed_request_verifies_and_nonces_differ() -> None:
    check(signed())
    assert signed()[HEADER_NONCE] != signed()[HEADER_NONCE]


@pytest.mark.parametrize(
    "change",
    [
        {"method": "GET"},
        {"path": "/v1/accounts/bob/x"},
        {"path": "/v1/accounts/alice/x?after=1"},
        {"origin": "https://other.example"},
        {"origin": "http://keystead.example"},
        {"origin": "https://keystead.example:8443"},
    ],
)
def test_signature_covers_method_origin_and_path(change: dict[str, str]) -> None:
    with pytest.raises(InvalidSignature):
        check(signed(), **change)


def test_the_origin_is_compared_without_case() -> None:
    check(signed(), origin="HTTPS://Keystead.Example")


@pytest.mark.parametrize(
    "url,origin",
    [
        ("https://Keystead.Example/v1/x?y=1", "https://keystead.example"),
        ("http://127.0.0.1:8080/", "http://127.0.0.1:8080"),
    ],
)
def test_origin_of_a_service_url(url: str, origin: str) -> None:
    assert origin_of(url) == origin


@pytest.mark.parametrize("url", ["keystead.example", "ftp://keystead.example", "https://"])
def test_origin_of_refuses_what_is_not_a_service_url(url: str) -> None:
    with pytest.raises(FormatError):
        origin_of(url)


def test_body_that_does_not_match_its_digest_is_refused() -> None:
    with pytest.raises(FormatError, match="digest"):
        check(signed(), body=b'{"a":2}')


@pytest.mark.parametrize("skew", [MAX_SKEW + 1, -MAX_SKEW - 1, 10**6])
def test_stale_or_future_time_is_refused(skew: int) -> None:
    with pytest.raises(InvalidSignature):
        check(signed(), now=NOW + skew)
    check(signed(), now=NOW + (MAX_SKEW if skew > 0 else -MAX_SKEW))


def test_other_device_key_or_claimed_device_is_refused() -> None:
    with pytest.raises(InvalidSignature):
        auth = parse_auth(signed())
        assert auth is not None
        auth.verify(SigningKey.generate().verify_key, now=NOW, **ARGS)  # type: ignore[arg-type]
    h = signed()
    h[HEADER_DEVICE] = "alice/dev2"
    with pytest.raises(InvalidSignature):
        check(h)


def test_unsigned_request_parses_to_none() -> None:
    assert parse_auth({}) is None


@pytest.mark.parametrize(
    "header,value",
    [
        (HEADER_DEVICE, "alice"),
        (HEADER_DEVICE, "/dev"),
        (HEADER_DEVICE, "alice/"),
        ("keystead-time", "soon"),
        ("keystead-time", ""),
        (HEADER_NONCE, "short"),
        ("keystead-content-sha256", "XYZ"),
        ("keystead-content-sha256", "A" * 64),
        (HEADER_SIGNATURE, "AA"),
    ],
)
def test_malformed_headers_are_format_errors(header: str, value: str) -> None:
    h = signed()
    h[header] = value
    with pytest.raises(FormatError):
        parse_auth(h)
