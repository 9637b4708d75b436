"""The vault's SSH-key items, offered to other adapters as a named service.

The ssh adapter asks for an :class:`~keystead.core.capabilities.SshKeySource` (``keystead
ssh import --from-vault NAME``) instead of importing this adapter: it gets the key file's
bytes and imports them as it imports a file.
"""

from __future__ import annotations

from keystead.core import FormatError, NotFound
from keystead.core.capabilities import AdapterCapabilities

from ._entry import Entry
from ._vault import COLLECTION

__all__ = ["VaultSshKeys"]


class VaultSshKeys:
    """SSH-key items found by name (any case) or id, after a sync of the vault."""

    def __init__(self, caps: AdapterCapabilities) -> None:
        self._caps = caps

    def ssh_private_key(self, name: str) -> bytes:
        coll = self._caps.collection(COLLECTION)
        coll.sync()
        found = []
        for rec in coll.records():
            if rec.deleted:
                continue
            try:
                entry = Entry.from_bytes(rec.plaintext)
            except FormatError:
                continue  # not a vault entry this version reads; never an SSH key to import
            if entry.type == "ssh-key" and name.casefold() in (entry.name.casefold(), rec.id):
                found.append(entry)
        if not found:
            raise NotFound(f"the vault has no SSH-key item called {name!r}")
        if len(found) > 1:
            raise FormatError(f"{len(found)} SSH-key items are called {name!r}: give its id")
        key = found[0].details_dict.get("privateKey", "")
        if not key:
            raise NotFound(f"the vault's item {name!r} holds no private key")
        return key.encode()
