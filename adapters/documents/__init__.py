"""Keystead documents adapter: the ``.kst`` format and its streaming encryption.

A document is a header (owner, label, service, id, the Umbral capsule of its
data key) followed by a chunked AEAD stream. This layer knows nothing of
accounts or services: callers bring the data key. See docs/FORMAT.md.
"""

from ._document import DataKeyProvider, open_stream, open_to_path, protect_stream, protect_to_path
from ._header import (
    DEFAULT_CHUNK_SIZE,
    DOCUMENT_ID_SIZE,
    MAX_CHUNK_SIZE,
    MIN_CHUNK_SIZE,
    NONCE_PREFIX_SIZE,
    Header,
    read_header,
)
from ._labels import MAGIC_V1, PAYLOAD_KEY_LABEL
from ._progress import terminal_progress
from ._stream import DATA_KEY_SIZE, TAG_SIZE, Progress

__all__ = [
    "DATA_KEY_SIZE",
    "DEFAULT_CHUNK_SIZE",
    "DOCUMENT_ID_SIZE",
    "MAGIC_V1",
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
]
