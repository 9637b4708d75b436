"""Regenerate the known-answer vectors for the .kst document format.

Run from the repository root: ``python tests/vectors/documents/generate.py``.
Every input is fixed, so the output is byte-for-byte reproducible; the tests
check that the committed files still match what the code produces. The sealed key
record is placeholder bytes: the format treats it as opaque.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

from keystead.adapters.documents import Header, protect_stream
from keystead.adapters.documents._stream import payload_key

HERE = Path(__file__).resolve().parent

DATA_KEY = bytes(range(32))
COMMON: dict[str, Any] = {
    "owner": "alice@example.org",
    "label": "board-papers",
    "service_url": "https://keys.example.org",
    "document_id": bytes(range(0x10, 0x20)).hex(),
    "created": 1_700_000_000,
    "sealed_key": (b"\xca" * 300).hex(),
    "chunk_size": 65536,
    "nonce_prefix": "a0a1a2a3a4a5a6",
}

# (file name, plaintext size, overrides of COMMON)
CASES: list[tuple[str, int, dict[str, Any]]] = [
    ("empty", 0, {}),
    ("one-byte", 1, {"label": "Conseil — procès-verbaux", "owner": "bob@ks.example:8443"}),
    ("one-chunk", 65536, {}),
    ("one-chunk-plus-one", 65537, {}),
    ("multi-chunk", 3 * 65536 + 1000, {}),
    ("small-chunks", 10_000, {"chunk_size": 4096, "created": 0}),
]


def plaintext(size: int) -> bytes:
    """Byte i of every vector's plaintext is i mod 251 (no period that aligns with chunks)."""
    return bytes(i % 251 for i in range(size))


def header_from(params: dict[str, Any]) -> Header:
    """Build the header a vector describes (hex fields decoded)."""
    return Header(
        owner=params["owner"],
        label=params["label"],
        service_url=params["service_url"],
        document_id=bytes.fromhex(params["document_id"]),
        created=params["created"],
        sealed_key=bytes.fromhex(params["sealed_key"]),
        chunk_size=params["chunk_size"],
        nonce_prefix=bytes.fromhex(params["nonce_prefix"]),
    )


def main() -> None:
    vectors = []
    for name, size, overrides in CASES:
        params = {**COMMON, **overrides}
        header = header_from(params)
        out = io.BytesIO()
        protect_stream(io.BytesIO(plaintext(size)), out, header, DATA_KEY)
        blob = out.getvalue()
        (HERE / f"{name}.kst").write_bytes(blob)
        vectors.append(
            {
                "name": name,
                "file": f"{name}.kst",
                "plaintext_size": size,
                "header_fields": params,
                "header": header.to_bytes().hex(),
                "header_sha256": header.digest.hex(),
                "payload_key": payload_key(DATA_KEY, header.digest).hex(),
                "file_size": len(blob),
                "file_sha256": hashlib.sha256(blob).hexdigest(),
            }
        )
    doc = {
        "description": "Known-answer vectors for Keystead .kst documents v2 (docs/FORMAT.md)",
        "data_key": DATA_KEY.hex(),
        "plaintext": "byte i is i mod 251",
        "vectors": vectors,
    }
    (HERE / "vectors.json").write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
