"""Opening the vault for a command: unlock the device, sync first when asked and reachable."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from keystead.core.cli import open_device

if TYPE_CHECKING:
    from ._vault import Vault

__all__ = ["open_vault"]


@contextmanager
def open_vault(*, online: bool = False) -> Iterator[Vault]:
    """Unlock the device and open its vault; with ``online``, sync first when reachable."""
    from keystead.core import NetworkError

    from ._vault import Vault

    with open_device(refresh_chain=False) as dev:
        fresh = False
        if online:
            try:
                dev.me(dev.chain())
                fresh = True
            except NetworkError:
                dev.me()  # offline: the cached chain still has to list this device
        vault = Vault(dev)
        try:
            if online and not vault.try_sync(refresh_chain=not fresh):
                print(
                    "keystead: the service is unreachable; working from the local cache",
                    file=sys.stderr,
                )
            yield vault
        finally:
            vault.close()
