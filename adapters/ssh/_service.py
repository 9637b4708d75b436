"""The service's ``/v1/ssh`` routes: store and serve the signed list of imported public keys.

Reading is unauthenticated (sshd's ``AuthorizedKeysCommand`` has no device): the
list carries the account's signature, which every reader verifies against the
account chain. Writing needs a live admin device, and the service checks the
signature and that ``seq`` counts up, so it never stores a list nobody could verify.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from keystead.core import Conflict, NotFound, canonical_json
from keystead.core.service import ServiceContext

from ._published import published_seq, verify_published

__all__ = ["ssh_router"]

NAMESPACE = "ssh"
KEY = "published-keys"


def ssh_router(ctx: ServiceContext) -> APIRouter:
    r = APIRouter(prefix="/v1/ssh")
    store = ctx.store

    @r.get("/{account}/published-keys")
    async def get_published(account: str) -> dict[str, Any]:
        raw = store.record_get(account, NAMESPACE, KEY)
        if raw is None:
            raise NotFound("no imported ssh keys were published for this account")
        value: dict[str, Any] = json.loads(raw)
        return value

    @r.put("/{account}/published-keys")
    async def put_published(account: str, request: Request) -> dict[str, Any]:
        await ctx.authenticate(request, account=account, admin=True)
        state = store.chain_state(account)
        new = verify_published(
            state.signing_key, state.key_generation, await ctx.json_body(request), account=account
        )
        raw = store.record_get(account, NAMESPACE, KEY)
        if raw is not None:
            # The stored list was checked when stored; after an account key rotation it is
            # signed by the old key, or it may be of format 1: only its seq matters here.
            old_seq = published_seq(json.loads(raw))
            if new.seq <= old_seq:
                raise Conflict(f"published ssh keys: seq {new.seq} is not after {old_seq}")
        store.record_put(account, NAMESPACE, KEY, canonical_json(new.to_json()), ctx.now())
        return {"seq": new.seq}

    return r
