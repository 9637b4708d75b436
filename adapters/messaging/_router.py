"""The messaging service routes: a group's members and sealed name, and fan-out delivery.

``GET /v1/messaging/groups/{owner}/{id}/members`` answers a device of the
owner or of a member account (an unexpired account grant to the group key) with
the member accounts, so any member can send to the group. It carries no
authority: a name the service adds cannot open anything without a kfrag signed
by the owner, and envelopes are signed by their senders.

``PUT /v1/messaging/groups/{id}/name`` (a device of the owner) stores the group's
name as a sealed-key record sealed to the current epoch of the group key, and
``GET /v1/messaging/groups/{owner}`` lists, for a device of the owner or of a
member account, the ids and sealed names of the groups it may read: members open
the names through their grant; the service only ever holds ids and ciphertext.

``POST /v1/messaging/deliver`` puts one spool entry per member (the same
ciphertext, each envelope signed for its recipient) in one request instead of
one round trip per member. Any live device may post to any spool already; this
is the same right in bulk, recorded with the same authenticated sender.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from keystead.core import Forbidden, FormatError, b64d, b64e, parse_json_object
from keystead.core.sealed import SealedKey

from . import _labels
from ._envelope import Group, sealed_key_of

if TYPE_CHECKING:
    from keystead.core.capabilities import RequestNonce, ServiceCapabilities
    from keystead.core.service.store import AuthDevice

__all__ = ["MAX_DELIVERIES", "messaging_router"]

MAX_DELIVERIES = 1000


def messaging_router(caps: ServiceCapabilities) -> APIRouter:
    """Built from the adapter's capabilities only: grants of its keys, its channel."""
    r = APIRouter(prefix="/v1/messaging")
    ctx, channel = caps, caps.channel(_labels.CHANNEL)

    names = caps.records(_labels.GROUP_NAMES)

    def member_accounts(owner: str, key: str) -> list[str]:
        now = ctx.now()
        return sorted(
            {
                account
                for account, expires in caps.account_grants(owner, key)
                if expires is None or expires > now
            }
        )

    @r.get("/groups/{owner}/{group_id}/members")
    async def members(owner: str, group_id: str, request: Request) -> dict[str, Any]:
        device = await ctx.authenticate(request)
        key = Group(f"{owner}@x", group_id).key  # checks the id
        accounts = await caps.run(member_accounts, owner, key)
        if device.account != owner and device.account not in accounts:
            raise Forbidden(f"this account is not a member of group {group_id} of {owner}")
        return {"members": accounts}

    @r.put("/groups/{group_id}/name", status_code=204)
    async def put_name(group_id: str, request: Request) -> None:
        device = await ctx.authenticate(request)
        key = Group(f"{device.account}@x", group_id).key
        sealed = b64d((await ctx.json_body(request)).get("name"), what="sealed group name")
        record = await caps.run(caps.require_current_epoch, device.account, key, sealed)
        if record.owner != device.account or record.key != key:
            raise FormatError("the name must be sealed to this group's key")
        await caps.run(names.put, device.account, group_id, sealed, ctx.now())

    @r.get("/groups/{owner}")
    async def group_names(owner: str, request: Request) -> dict[str, Any]:
        device = await ctx.authenticate(request)
        out = []
        for group_id, sealed in await caps.run(names.list, owner):
            key = Group(f"{owner}@x", group_id).key
            if device.account == owner or device.account in await caps.run(
                member_accounts, owner, key
            ):
                out.append({"id": group_id, "name": b64e(sealed)})
        return {"groups": out}

    @r.post("/direct/{account}", status_code=201)
    async def direct(account: str, request: Request) -> dict[str, Any]:
        """A direct message to ``account``, from any live device of any account."""
        raw, now = await request.body(), ctx.now()

        def post(device: AuthDevice, nonce: RequestNonce | None) -> int:
            # one trip to the thread pool, one commit (the nonce goes with the message)
            obj = parse_json_object(raw, what="request body")
            body = b64d(obj.get("body"), what="message body")
            caps.require_current_epoch(account, _labels.CHANNEL, sealed_key_of(body))
            return channel.put(account, f"{device.account}/{device.id}", body, now, nonce=nonce)

        return {"id": await caps.signed(request, post, nonce_in_then=True)}

    @r.post("/deliver", status_code=201)
    async def deliver(request: Request) -> dict[str, Any]:
        device = await ctx.authenticate(request)
        obj = await ctx.json_body(request)
        raw = obj.get("deliveries")
        if not isinstance(raw, list) or not 0 < len(raw) <= MAX_DELIVERIES:
            raise FormatError(f"between 1 and {MAX_DELIVERIES} deliveries per request")
        parsed = []
        for d in raw:
            if (
                not isinstance(d, dict)
                or set(d) != {"account", "body"}
                or not isinstance(d["account"], str)
            ):
                raise FormatError("delivery: expected {account, body}")
            body = b64d(d["body"], what="delivery body")
            parsed.append((d["account"], body))
        # One group message: every copy carries the same sealed key, of the group owner's key.
        for sealed in {sealed_key_of(body) for _, body in parsed}:
            record = SealedKey.from_bytes(sealed)
            if not record.key.startswith(_labels.GROUP_PREFIX):
                raise FormatError("a group delivery must be sealed to a group key")
            await caps.run(caps.require_current_epoch, record.owner, record.key, sealed)
        sender, now = f"{device.account}/{device.id}", ctx.now()
        ids = await caps.run(channel.put_many, sender, parsed, now)
        return {"ids": ids}

    return r
