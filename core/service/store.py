"""The service's storage operations: everything the routes do to the database.

Each method is one transaction. Chain appends are checked with the same pure
verifier clients use (:mod:`keystead.core.chain`); nothing is written unless
the whole request is valid. Values returned are core types or plain
dataclasses, never ORM rows.
"""

from __future__ import annotations

from ._store_base import AuthDevice
from .store_bundle import Bundle, BundleStore
from .store_data import SpoolMessage
from .store_grants import AuditRecord, Grant
from .store_pairing import PAIRING_MAX_FAILURES, PAIRING_TTL, PairingStore
from .store_push import PushStore, PushTarget

__all__ = [
    "PAIRING_MAX_FAILURES",
    "PAIRING_TTL",
    "AuditRecord",
    "AuthDevice",
    "Bundle",
    "Grant",
    "PushTarget",
    "SpoolMessage",
    "Store",
]


class Store(PairingStore, BundleStore, PushStore):
    """All database work of the service, one part per responsibility: the chain and
    authentication (``store_chain``), grants and re-encryption (``store_grants``), pairing
    (``store_pairing``), items, spools and records (``store_data``), Web Push
    (``store_push``)."""
