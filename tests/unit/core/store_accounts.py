"""Accounts made directly in a store (one bundle: two collections, an admin, its grants, an
item), for the storage tests."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from keystead.core._encoding import b64d, b64e
from keystead.core._umbral import PRESecretKey
from keystead.core.bundle import Plan
from keystead.core.chain import make_entry, sign_device_statement, verify_chain
from keystead.core.epochs import data_key
from keystead.core.items import SealedItem, seal_item, sign_items
from keystead.core.keys import AccountSecrets, DeviceKeys
from keystead.core.service import Store
from keystead.core.service.store import (
    AuthDevice,
    Bundle,
    Grant,
)

NOW = 1_700_000_000
COLLECTIONS = ("notes", "ssh", "_admin")


def to_grants(raw: Sequence[dict[str, Any]]) -> list[Grant]:
    return [
        Grant(
            g["key"],
            g["epoch"],
            g["target_kind"],
            g["target"],
            g["target_generation"],
            b64d(g["kfrag"]),
            g["expires"],
        )
        for g in raw
    ]


def to_bundle(plan: Plan, *, blob: bool = True) -> Bundle:
    """What the service's route makes of ``plan.to_json()`` (items signed per writer)."""
    wire = plan.to_json(with_recovery=blob)
    items = [
        (i["collection"], SealedItem.from_json({k: v for k, v in i.items() if k != "collection"}))
        for i in wire["items"]
    ]
    return Bundle(
        plan.base.seq,
        plan.base.head,
        list(plan.entries),
        to_grants(plan.grants),
        [(d["key"], d["target_kind"], d["target"]) for d in plan.deletes],
        items,
        b64d(wire["recovery_blob"]) if blob else None,
    )


@dataclass
class Acct:
    """An account written straight into a store: its secrets and how to extend its chain."""

    store: Store
    name: str
    secrets: AccountSecrets
    admin: DeviceKeys

    def plan(self) -> Plan:
        """A bundle under construction on the stored head."""
        return Plan(self.secrets, self.store.chain_state(self.name), lambda: NOW)

    def device_entry(
        self,
        name: str,
        scopes: list[str] | None = None,
        keys: DeviceKeys | None = None,
        role: str = "member",
    ) -> tuple[DeviceKeys, Plan]:
        keys = keys or DeviceKeys.generate()
        body = {**keys.public_body(name), "role": role, "scopes": scopes or ["notes"]}
        plan = self.plan()
        plan.add("device-added", body, sign_device_statement(keys.signing, self.name, body))
        return keys, plan

    def grants(self, keys: DeviceKeys, scopes: list[str], plan: Plan | None = None) -> list[Grant]:
        """Device grants on the newest epoch of each of ``scopes``."""
        plan = plan or self.plan()
        first = len(plan.grants)
        for scope in scopes:
            plan.grant_device(scope, keys.device_id, keys.pre.public_key)
        return to_grants(plan.grants[first:])

    def apply(self, plan: Plan, writer: DeviceKeys | None = None) -> Any:
        return self.store.apply_bundle(
            self.name, to_bundle(plan), (writer or self.admin).device_id, NOW
        )

    def item(
        self,
        item_id: str,
        version: int,
        plaintext: bytes = b"x",
        *,
        collection: str = "notes",
        epoch: int | None = None,
        writer: DeviceKeys | None = None,
    ) -> SealedItem:
        """An item sealed under ``epoch`` (default: the current one), signed by ``writer``."""
        coll = self.store.chain_state(self.name).collection(collection)
        number = coll.current_epoch if epoch is None else epoch
        secret = self.secrets.epoch_secret(collection, number)
        assert secret is not None
        writer = writer or self.admin
        item = seal_item(
            data_key(secret, coll.epoch(number)),
            account=self.name,
            collection=collection,
            item_id=item_id,
            version=version,
            epoch=number,
            plaintext=plaintext,
            writer=writer.device_id,
        )
        return sign_items(writer.signing, account=self.name, collection=collection, items=[item])[0]

    def put(
        self, items: list[SealedItem], collection: str = "notes", writer: DeviceKeys | None = None
    ) -> list[int]:
        return self.store.put_items(self.name, collection, items, (writer or self.admin).device_id)

    def snapshot(self) -> dict[str, Any]:
        """Everything stored for this account that a refused request must not change."""
        s = self.store
        return {
            "chain": [e.to_json() for e in s.chain(self.name)],
            "devices": {d: s.device(self.name, d) for d in s.chain_state(self.name).devices},
            "grants": s.grants(self.name),
            "items": {c: s.changes(self.name, c, 0, 1000) for c in COLLECTIONS},
            "recovery": s.recovery_blob(self.name),
        }


def make(store: Store) -> Acct:
    """An account created with one bundle: two collections, an admin, its grants, one item."""
    name = f"a-{uuid.uuid4().hex[:10]}"
    secrets = AccountSecrets.generate(PRESecretKey.generate().public_key)
    keys = DeviceKeys.generate()
    genesis = make_entry(
        secrets.account_key,
        account=name,
        seq=0,
        prev="",
        time=NOW,
        type="account-created",
        body={
            "account_key": b64e(secrets.account_key.verify_key.raw),
            "kfrag_signer": b64e(secrets.kfrag_signer.public_key.raw),
            "recovery_key": b64e(secrets.recovery_key.raw),
            "sharing_key": b64e(secrets.sharing[0].public_key.raw),
        },
    )
    plan = Plan(secrets, verify_chain([genesis], account=name), lambda: NOW)
    for coll in COLLECTIONS:
        plan.collection(coll, "items")
    body = {**keys.public_body("laptop"), "role": "admin", "scopes": sorted(COLLECTIONS)}
    plan.add("device-added", body, sign_device_statement(keys.signing, name, body))
    for coll in COLLECTIONS:
        plan.grant_device(coll, keys.device_id, keys.pre.public_key)
    plan.put_item("_admin", "secrets", secrets.to_bytes(), 1, keys.device_id, keys.signing)
    bundle = to_bundle(plan)
    store.create_account(name, replace(bundle, entries=[genesis, *bundle.entries]), NOW)
    return Acct(store, name, secrets, keys)


def auth(a: Acct, keys: DeviceKeys) -> AuthDevice:
    return a.store.device(a.name, keys.device_id)


def current_capsule(a: Acct, coll: str = "notes") -> tuple[int, bytes]:
    info = a.store.chain_state(a.name).collection(coll).current
    assert info.capsule is not None
    return info.epoch, info.capsule
