"""Known-answer vectors: the code and an independent reading of docs/FORMAT.md agree."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import struct
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from keystead.adapters.documents import open_stream, protect_stream, read_header

VECTORS = Path(__file__).resolve().parents[4] / "tests" / "vectors" / "documents"
DOC = json.loads((VECTORS / "vectors.json").read_text())
DATA_KEY = bytes.fromhex(DOC["data_key"])


def _generator() -> Any:
    spec = importlib.util.spec_from_file_location("documents_generate", VECTORS / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GEN = _generator()


def plaintext(size: int) -> bytes:
    return bytes(i % 251 for i in range(size))


def spec_decrypt(blob: bytes, data_key: bytes) -> tuple[bytes, bytes]:
    """Decrypt by following docs/FORMAT.md alone (no adapter code): (header, plaintext)."""
    magic = b"keystead-document/2\n"
    assert blob.startswith(magic)
    (body_len,) = struct.unpack(">H", blob[len(magic) : len(magic) + 2])
    header = blob[: len(magic) + 2 + body_len]
    pos = len(magic) + 2
    for fmt in (">B", ">B", ">H"):  # owner, label, service url
        (n,) = struct.unpack(fmt, blob[pos : pos + struct.calcsize(fmt)])
        pos += struct.calcsize(fmt) + n
    pos += 16 + 8  # document id, created
    (chunk_size,) = struct.unpack(">I", blob[pos : pos + 4])
    prefix = blob[pos + 4 : pos + 11]
    key = HKDF(
        SHA256(),
        32,
        salt=hashlib.sha256(header).digest(),
        info=b"keystead/v1/documents/payload-key",
    ).derive(data_key)
    body = blob[len(header) :]
    chunks = [body[i : i + chunk_size + 16] for i in range(0, len(body), chunk_size + 16)] or [b""]
    aead, out = AESGCM(key), b""
    for i, chunk in enumerate(chunks):
        last = i == len(chunks) - 1
        out += aead.decrypt(prefix + struct.pack(">IB", i, last), chunk, None)
    return header, out


@pytest.mark.parametrize("vector", DOC["vectors"], ids=lambda v: v["name"])
def test_vector(vector: dict[str, Any]) -> None:
    blob = (VECTORS / vector["file"]).read_bytes()
    assert len(blob) == vector["file_size"]
    assert hashlib.sha256(blob).hexdigest() == vector["file_sha256"]

    header = GEN.header_from(vector["header_fields"])
    assert header.to_bytes().hex() == vector["header"]
    assert header.digest.hex() == vector["header_sha256"]
    assert read_header(io.BytesIO(blob)) == header

    made = io.BytesIO()
    protect_stream(io.BytesIO(plaintext(vector["plaintext_size"])), made, header, DATA_KEY)
    assert made.getvalue() == blob

    opened = io.BytesIO()
    assert open_stream(io.BytesIO(blob), opened, lambda _h: DATA_KEY) == header
    assert opened.getvalue() == plaintext(vector["plaintext_size"])

    spec_header, spec_plaintext = spec_decrypt(blob, DATA_KEY)
    assert spec_header.hex() == vector["header"]
    assert spec_plaintext == opened.getvalue()


def test_vectors_cover_the_required_sizes() -> None:
    sizes = {
        v["plaintext_size"] for v in DOC["vectors"] if v["header_fields"]["chunk_size"] == 65536
    }
    assert {0, 1, 65536, 65537} <= sizes and max(sizes) > 2 * 65536


def test_generator_matches_committed_vectors() -> None:
    assert GEN.plaintext(1000) == plaintext(1000)
    assert [v["name"] for v in DOC["vectors"]] == [name for name, _, _ in GEN.CASES]
