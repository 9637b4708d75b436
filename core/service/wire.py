"""Request bodies and query parameters into checked values, for the core routes.

Each function raises ``FormatError`` (400) or ``QuotaExceeded`` (413) with one line naming
what is wrong; a route calls them before it touches the store, so nothing is stored
unless the whole request is valid.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request

from .._encoding import b64d, b64e
from .._umbral import CAPSULE_SIZE
from ..chain import SignedEntry, check_collection, verify_pairing_request
from ..errors import FormatError, QuotaExceeded
from ..items import SealedItem
from .config import ServiceConfig
from .context import ServiceContext, dumps, require
from .store import Bundle, Grant

__all__ = [
    "bundle",
    "capsules",
    "check_batch",
    "entries",
    "grants",
    "int_param",
    "pairing_request",
    "recovery_blob",
]

MAX_BATCH = ServiceConfig().max_batch


def entries(obj: dict[str, Any]) -> list[SignedEntry]:
    raw = require(obj, "entries", list)
    if len(raw) > 1000:
        raise FormatError("too many chain entries at once")
    return [SignedEntry.from_json(e) for e in raw]


def grants(obj: dict[str, Any]) -> list[Grant]:
    out = []
    for g in require(obj, "grants", list):
        if not isinstance(g, dict):
            raise FormatError("grant: expected an object")
        expires = g.get("expires")
        if expires is not None and not isinstance(expires, int):
            raise FormatError("grant: expires must be an integer")
        out.append(
            Grant(
                check_collection(require(g, "key", str)),
                require(g, "epoch", int),
                require(g, "target_kind", str),
                require(g, "target", str),
                require(g, "target_generation", int),
                b64d(g.get("kfrag"), what="kfrag"),
                expires,
            )
        )
    return out


def bundle(obj: dict[str, Any], *, base: bool = True) -> Bundle:
    """Parse a bundle (docs/PROTOCOL.md, "Bundles"); every part is checked when applied."""
    if base:
        b = require(obj, "base", dict)
        base_seq, base_head = require(b, "seq", int), require(b, "head", str)
        if base_seq < 0:
            raise FormatError("bundle base: seq counts from 0")
    else:
        base_seq, base_head = -1, ""
    deletes = []
    for d in require(obj, "delete_grants", list):
        if not isinstance(d, dict):
            raise FormatError("delete_grants: expected objects")
        deletes.append(
            (
                check_collection(require(d, "key", str)),
                require(d, "target_kind", str),
                require(d, "target", str),
            )
        )
    items = []
    raw_items = require(obj, "items", list)
    if len(raw_items) > MAX_BATCH:
        raise FormatError(f"at most {MAX_BATCH} items in one bundle")
    for i in raw_items:
        if not isinstance(i, dict):
            raise FormatError("bundle item: expected an object")
        items.append(
            (
                check_collection(require(i, "collection", str)),
                SealedItem.from_json({k: v for k, v in i.items() if k != "collection"}),
            )
        )
    blob = obj.get("recovery_blob")
    return Bundle(
        base_seq,
        base_head,
        entries(obj),
        grants(obj),
        deletes,
        items,
        None if blob is None else b64d(blob, what="recovery blob"),
    )


def int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise FormatError(f"query parameter {name!r} must be an integer") from None
    if not low <= value <= high:
        raise FormatError(f"query parameter {name!r} out of range")
    return value


def capsules(reqs: list[Any]) -> list[tuple[str, int, bytes]]:
    out = []
    for q in reqs:
        if not isinstance(q, dict):
            raise FormatError("reencrypt request: expected an object")
        out.append(
            (
                require(q, "key", str),
                require(q, "epoch", int),
                b64d(q.get("capsule"), size=CAPSULE_SIZE, what="capsule"),
            )
        )
    return out


def check_batch(ctx: ServiceContext, n: int, what: str) -> None:
    if n > ctx.config.max_batch:
        raise QuotaExceeded(f"at most {ctx.config.max_batch} {what} (max_batch)", limit="max_batch")


def recovery_blob(ctx: ServiceContext, raw: Any) -> bytes:
    blob = b64d(raw, what="recovery blob")
    if len(blob) > ctx.config.max_recovery_blob:
        raise QuotaExceeded(
            f"the recovery blob is over {ctx.config.max_recovery_blob} bytes (max_recovery_blob)",
            limit="max_recovery_blob",
        )
    return blob


def pairing_request(account: str, obj: dict[str, Any]) -> bytes:
    """Check a joining device's request (it proves it holds its signing key) and keep its bytes."""
    device, sig, _ = verify_pairing_request(account, obj)
    return dumps({"device": device, "statement_sig": b64e(sig)})
