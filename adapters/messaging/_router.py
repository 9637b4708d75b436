"""The messaging service routes: a group's member list, and fan-out delivery in one request.

``GET /v1/messaging/groups/{owner}/{name}/members`` answers a device of the
owner or of a member account (an unexpired account grant to the group key) with
the member accounts, so any member can send to the group. It carries no
authority: a name the service adds cannot open anything without a kfrag signed
by the owner, and envelopes are signed by their senders.

``POST /v1/messaging/deliver`` puts one spool entry per member (the same
ciphertext, each envelope signed for its recipient) in one request instead of
one round trip per member. Any live device may post to any spool already; this
is the same right in bulk, recorded with the same authenticated sender.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from keystead.core import Forbidden, FormatError, b64d, parse_json_object
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

    @r.get("/groups/{owner}/{name}/members")
    async def members(owner: str, name: str, request: Request) -> dict[str, Any]:
        device = await ctx.authenticate(request)
        key = Group(f"{owner}@x", name).key  # checks the name
        now = ctx.now()
        accounts = sorted(
            {
                account
                for account, expires in caps.account_grants(owner, key)
                if expires is None or expires > now
            }
        )
        if device.account != owner and device.account not in accounts:
            raise Forbidden(f"this account is not a member of group {name!r} of {owner}")
        return {"members": accounts}

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
