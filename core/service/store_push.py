"""Web Push storage: the service's VAPID key and the devices' push subscriptions."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from ._store_base import StoreBase
from .models import DeviceRow, PushSubscriptionRow, ServiceKeyRow

__all__ = ["PushStore", "PushTarget"]


@dataclass(frozen=True)
class PushTarget:
    """Where one device wants its wake-ups (RFC 8030 endpoint, RFC 8291 keys)."""

    account: str
    device_id: str
    endpoint: str
    p256dh: bytes
    auth: bytes


class PushStore(StoreBase):
    def service_key(self, name: str, make: Callable[[], bytes], now: int) -> bytes:
        """The service's key ``name``, made once by whichever process asks first; every
        process reads the same one afterwards."""
        with self._sessions() as s:
            row = s.get(ServiceKeyRow, name)
            if row is not None:
                return row.value
        try:
            with self._write() as s:
                if s.get(ServiceKeyRow, name) is None:
                    s.add(ServiceKeyRow(name=name, value=make(), created=now))
        except IntegrityError:
            pass  # another process made it first: read theirs
        with self._sessions() as s:
            row = s.get(ServiceKeyRow, name)
            assert row is not None
            return row.value

    def put_push(self, target: PushTarget, now: int) -> None:
        """Store or replace the subscription of ``target``'s device."""
        with self._write() as s:
            row = s.get(PushSubscriptionRow, (target.account, target.device_id))
            if row is None:
                s.add(
                    PushSubscriptionRow(
                        account=target.account,
                        device_id=target.device_id,
                        endpoint=target.endpoint,
                        p256dh=target.p256dh,
                        auth=target.auth,
                        created=now,
                    )
                )
            else:
                row.endpoint, row.p256dh, row.auth = target.endpoint, target.p256dh, target.auth
                row.created = now

    def get_push(self, account: str, device_id: str) -> PushTarget | None:
        with self._sessions() as s:
            row = s.get(PushSubscriptionRow, (account, device_id))
            if row is None:
                return None
            return PushTarget(account, device_id, row.endpoint, row.p256dh, row.auth)

    def delete_push(self, account: str, device_id: str, endpoint: str | None = None) -> bool:
        """Delete a device's subscription (only if it still is ``endpoint``, when given: a
        newer one the device registered meanwhile stays)."""
        with self._write() as s:
            q = delete(PushSubscriptionRow).where(
                PushSubscriptionRow.account == account, PushSubscriptionRow.device_id == device_id
            )
            if endpoint is not None:
                q = q.where(PushSubscriptionRow.endpoint == endpoint)
            return bool(s.execute(q).rowcount)  # type: ignore[attr-defined]

    def push_targets(self, account: str, scope: str) -> list[PushTarget]:
        """Subscriptions of the live devices of ``account`` that have ``scope``. Those of
        removed devices are deleted here: a removed device is never woken again."""
        out: list[PushTarget] = []
        dead: list[str] = []
        with self._sessions() as s:
            rows = s.execute(
                select(PushSubscriptionRow, DeviceRow)
                .join(
                    DeviceRow,
                    (DeviceRow.account == PushSubscriptionRow.account)
                    & (DeviceRow.device_id == PushSubscriptionRow.device_id),
                    isouter=True,
                )
                .where(PushSubscriptionRow.account == account)
            ).all()
            for sub, dev in rows:
                if dev is None or not dev.live:
                    dead.append(sub.device_id)
                elif scope in json.loads(dev.scopes):
                    out.append(
                        PushTarget(account, sub.device_id, sub.endpoint, sub.p256dh, sub.auth)
                    )
        for device_id in dead:
            self.delete_push(account, device_id)
        return out
