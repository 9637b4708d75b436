"""Shared builders for the documents adapter tests: fixed keys, headers and documents."""

from __future__ import annotations

import io

from keystead.adapters.documents import Header, protect_stream

KEY = bytes(range(32))


def make_header(**overrides: object) -> Header:
    """A valid header with fixed fields; ``overrides`` replace any of them."""
    fields: dict[str, object] = {
        "owner": "alice@example.org",
        "label": "board",
        "service_url": "https://keys.example.org",
        "sealed_key": b"\xca" * 300,
        "created": 1_700_000_000,
        "document_id": bytes(range(16)),
        "nonce_prefix": b"\xa0" * 7,
        "chunk_size": 4096,
    }
    fields.update(overrides)
    return Header.new(**fields)  # type: ignore[arg-type]


def protect(plaintext: bytes, header: Header | None = None, key: bytes = KEY) -> bytes:
    """The .kst bytes of ``plaintext``."""
    out = io.BytesIO()
    protect_stream(io.BytesIO(plaintext), out, header or make_header(), key)
    return out.getvalue()
