"""What others seal to an account must use the epoch that is current now.

A sender whose cached chain predates a removal would otherwise seal to a key the
removed device still holds. Adapter routes that accept sealed keys for an account
(confirmation prompts, direct messages) check them here; a stale one is a 409,
after which the sender refreshes the chain and seals again.
"""

from __future__ import annotations

from ..errors import Conflict, FormatError
from ..sealed import SealedKey
from .store import Store

__all__ = ["require_current_epoch"]


def require_current_epoch(store: Store, account: str, key: str, sealed: bytes) -> SealedKey:
    """Parse ``sealed`` and check it is sealed to the current epoch of ``account``'s ``key``."""
    record = SealedKey.from_bytes(sealed)
    if record.owner != account or record.key != key:
        raise FormatError(f"a sealed key for another account or key than {account}/{key}")
    current = store.chain_state(account).collection(key).current_epoch
    if record.epoch != current:
        raise Conflict(
            f"sealed to epoch {record.epoch} of {account}/{key}, whose current epoch "
            f"is {current}: refresh the chain and seal again"
        )
    return record
