"""Every purpose label and magic string of the documents format, in one place.

A distinct label per derivation keeps a key made for one purpose from ever
being usable for another (age's ``"age-encryption.org/v1/payload"``).
"""

from __future__ import annotations

__all__ = ["MAGIC_PREFIX", "MAGIC_V2", "PAYLOAD_KEY_LABEL"]

#: Every document starts with this; what follows up to the newline is the version.
MAGIC_PREFIX = b"keystead-document/"

#: The exact first line of a version 2 document (its data key is a protocol v2 sealed-key
#: record). Version 1 documents are refused with a line naming both versions.
MAGIC_V2 = MAGIC_PREFIX + b"2\n"

#: HKDF ``info`` for the key that encrypts a document's body.
PAYLOAD_KEY_LABEL = b"keystead/v1/documents/payload-key"
