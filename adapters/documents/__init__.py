"""Keystead documents adapter: protect, open, grant, revoke and audit files of any type.

A document is a ``.kst`` file: a header (owner, label, service, id, the Umbral
sealed-key record of its data key) followed by a chunked AEAD stream (docs/FORMAT.md).
The format layer (``_header``, ``_stream``, ``_document``) knows nothing of
accounts; ``_access`` wires it to the core's shared keys, and ``cli`` is
``keystead doc``.

This module stays light: the CLI imports it on every run to learn
``commands``, so the public names below load on first use.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from keystead.core.lazy import lazy_exports

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs
    import click

    from ._document import (
        DataKeyProvider,
        open_stream,
        open_to_path,
        protect_stream,
        protect_to_path,
    )
    from ._header import (
        DEFAULT_CHUNK_SIZE,
        DOCUMENT_ID_SIZE,
        MAX_CHUNK_SIZE,
        MIN_CHUNK_SIZE,
        NONCE_PREFIX_SIZE,
        Header,
        read_header,
    )
    from ._labels import MAGIC_V2, PAYLOAD_KEY_LABEL
    from ._progress import terminal_progress
    from ._stream import DATA_KEY_SIZE, TAG_SIZE, Progress

_LAZY = {
    "DATA_KEY_SIZE": "._stream",
    "DEFAULT_CHUNK_SIZE": "._header",
    "DOCUMENT_ID_SIZE": "._header",
    "MAGIC_V2": "._labels",
    "MAX_CHUNK_SIZE": "._header",
    "MIN_CHUNK_SIZE": "._header",
    "NONCE_PREFIX_SIZE": "._header",
    "PAYLOAD_KEY_LABEL": "._labels",
    "TAG_SIZE": "._stream",
    "DataKeyProvider": "._document",
    "Header": "._header",
    "Progress": "._stream",
    "open_stream": "._document",
    "open_to_path": "._document",
    "protect_stream": "._document",
    "protect_to_path": "._document",
    "read_header": "._header",
    "terminal_progress": "._progress",
}

__all__ = [
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
    "adapter",
    "open_stream",
    "open_to_path",
    "protect_stream",
    "protect_to_path",
    "read_header",
    "terminal_progress",
]


__getattr__, __dir__ = lazy_exports(__name__, globals(), _LAZY)


class _Adapter:
    """The documents application: label keys under ``documents/``, ``keystead doc``."""

    name = "documents"
    collections = ("documents",)
    commands = ("doc",)

    def cli_groups(self) -> Mapping[str, click.Command]:
        from .cli import doc

        return {"doc": doc}

    def router(self, ctx: Any) -> None:
        return None


adapter = _Adapter()
