"""Pin the public names of the documents layer: the wiring step and the CLI build on them."""

from __future__ import annotations

import keystead.adapters.documents as documents


def test_public_names() -> None:
    assert sorted(documents.__all__) == sorted(
        [
            "DATA_KEY_SIZE",
            "DEFAULT_CHUNK_SIZE",
            "DOCUMENT_ID_SIZE",
            "MAGIC_V2",
            "MAX_CHUNK_SIZE",
            "MIN_CHUNK_SIZE",
            "NONCE_PREFIX_SIZE",
            "PAYLOAD_KEY_LABEL",
            "TAG_SIZE",
            "DataKeyProvider",
            "Header",
            "Progress",
            "open_stream",
            "open_to_path",
            "protect_stream",
            "protect_to_path",
            "read_header",
            "terminal_progress",
            "adapter",
        ]
    )
    for name in documents.__all__:
        assert getattr(documents, name) is not None


def test_adapter_is_light_and_wired() -> None:
    import subprocess
    import sys

    from keystead.core import Adapter

    assert isinstance(documents.adapter, Adapter)
    assert documents.adapter.name == "documents"
    assert documents.adapter.collections == ("documents",)
    assert documents.adapter.commands == ("doc",)
    assert documents.adapter.router(None) is None
    assert set(documents.adapter.cli_groups()) == {"doc"}
    code = "import sys, keystead.adapters.documents; print('cryptography' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
