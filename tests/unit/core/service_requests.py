"""Signed requests, sealed items and snapshots for the in-process service tests."""

from __future__ import annotations

import json
from typing import Any

import httpx
from core_harness import InProcessService
from keystead.core.device import Device
from keystead.core.items import SealedItem, seal_item, sign_items
from keystead.core.requests import origin_of, sign_request


def snapshot(svc: InProcessService, account: str) -> dict[str, Any]:
    s = svc.store
    return {
        "chain": [e.to_json() for e in s.chain(account)],
        "grants": s.grants(account),
        "items": {c: s.changes(account, c, 0, 10_000) for c in ("notes", "passwords")},
    }


def signed(
    dev: Device, method: str, path: str, body: bytes, *, time: float | None = None
) -> dict[str, str]:
    return sign_request(
        dev.keys.signing,
        account=dev.account,
        device=dev.device_id,
        method=method,
        origin=origin_of(dev.server),
        path=path,
        body=body,
        time=int(dev.clock() if time is None else time),
    )


def items_path(dev: Device, coll: str = "notes") -> str:
    return f"/v1/accounts/{dev.account}/collections/{coll}/items"


def sealed(
    dev: Device,
    item_id: str = "evil",
    *,
    coll: str = "notes",
    version: int = 1,
    epoch: int | None = None,
    writer: Device | None = None,
) -> SealedItem:
    """An item as ``writer`` (default ``dev``) seals and signs it, under ``epoch`` (default:
    the collection's current one as ``dev``'s chain says)."""
    number = dev.chain().collection(coll).current_epoch if epoch is None else epoch
    key = dev.epoch_keys(coll, [number])[number]
    w = writer or dev
    item = seal_item(
        key,
        account=dev.account,
        collection=coll,
        item_id=item_id,
        version=version,
        epoch=number,
        plaintext=b"x",
        writer=w.device_id,
    )
    return sign_items(w.keys.signing, account=dev.account, collection=coll, items=[item])[0]


def put_body(dev: Device, *items: SealedItem) -> bytes:
    return json.dumps({"items": [i.to_json() for i in items or (sealed(dev),)]}).encode()


def post_items(
    svc: InProcessService, dev: Device, body: bytes, coll: str = "notes"
) -> httpx.Response:
    with svc.http() as http:
        return http.post(
            items_path(dev, coll),
            content=body,
            headers=signed(dev, "POST", items_path(dev, coll), body),
        )


def capsule_request(dev: Device, coll: str) -> tuple[str, int, bytes]:
    info = dev.chain().collection(coll).current
    assert info.capsule is not None
    return coll, info.epoch, info.capsule
