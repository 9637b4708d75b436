"""Bundles: every multi-step change of an account, built on one device, applied in one
transaction by the service.

A :class:`Plan` starts from a verified chain head and collects chain entries, grants
(kfrags), grant deletions, items (each sealed under the epoch the new chain makes
current, and signed by its writer) and the new recovery blob. The service applies
the whole bundle on top of the head it names, or nothing: a stale head is a 409
and the client builds again; a resent bundle whose entries are already in the
chain is answered as done. See docs/PROTOCOL.md, "Bundles".
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from . import _umbral, labels
from ._encoding import b64e, canonical_json
from ._umbral import PREPublicKey
from .chain import ChainState, SignedEntry, make_entry
from .crypto import SigningKey
from .epochs import data_key, new_epoch
from .items import SealedItem, seal_item, sign_items
from .keys import AccountSecrets

__all__ = ["Plan", "bundle_digest", "recovery_blob"]

Clock = Callable[[], float]


def recovery_blob(secrets: AccountSecrets) -> bytes:
    """The account secrets sealed to the recovery key: capsule (105 bytes) || ciphertext."""
    capsule, ct = _umbral.encrypt(secrets.recovery_key, secrets.to_bytes())
    return capsule + ct


def bundle_digest(body: dict[str, Any]) -> bytes:
    """What the recovery key signs to authorize a bundle without a live admin device."""
    signed = {k: v for k, v in body.items() if k != "recovery_sig"}
    return labels.BUNDLE.encode() + b"\x00" + hashlib.sha256(canonical_json(signed)).digest()


class Plan:
    """One bundle under construction, on top of ``state`` (the verified head it extends)."""

    def __init__(self, secrets: AccountSecrets, state: ChainState, clock: Clock) -> None:
        self.secrets = secrets
        self.base = state
        self.state = state
        self.clock = clock
        self.entries: list[SignedEntry] = []
        self.grants: list[dict[str, Any]] = []
        self.deletes: list[dict[str, Any]] = []
        self.items: list[tuple[str, SealedItem, SigningKey]] = []
        self.data_keys: dict[tuple[str, int], bytes] = {}

    @property
    def account(self) -> str:
        return self.state.account

    # ------------------------------------------------------------------ chain
    def add(
        self,
        kind: str,
        body: dict[str, Any],
        device_signature: bytes | None = None,
        new_account_key: SigningKey | None = None,
    ) -> None:
        e = make_entry(
            self.secrets.account_key,
            account=self.account,
            seq=self.state.seq + 1,
            prev=self.state.head,
            time=int(self.clock()),
            type=kind,
            body=body,
            device_signature=device_signature,
            new_account_key=new_account_key,
        )
        self.state = self.state.extend([e])  # every entry checked as the service will
        self.entries.append(e)

    def collection(self, name: str, kind: str) -> None:
        self.add("collection-created", {"name": name, "kind": kind})
        self.epoch(name)

    def epoch(self, name: str) -> int:
        """Start the next epoch of ``name``: a fresh key pair, kept in the secrets."""
        coll = self.state.collections[name]
        number = coll.current_epoch + 1 if coll.epochs else 1
        current = self.secrets.current_secret(name)
        if coll.kind == "items" and number > 1 and (current is None or current[0] != number - 1):
            raise KeyError(f"this admin lacks the newest secret of {name!r}")
        made = new_epoch(self.account, name, coll.kind, number, current[1] if current else None)
        self.add("epoch", made.body)
        self.secrets.epochs.setdefault(name, {})[number] = made.secret
        if made.data_key is not None:
            self.data_keys[(name, number)] = made.data_key
        return number

    def rotate_account_key(self) -> None:
        """A new account key and kfrag signer (admin removal): signed by the old and new."""
        new_key, new_signer = SigningKey.generate(), _umbral.PRESecretKey.generate()
        gen = self.secrets.key_generation + 1
        self.add(
            "account-key-rotated",
            {
                "generation": gen,
                "account_key": b64e(new_key.verify_key.raw),
                "kfrag_signer": b64e(new_signer.public_key.raw),
            },
            new_account_key=new_key,
        )
        self.secrets.account_key, self.secrets.kfrag_signer = new_key, new_signer
        self.secrets.key_generation = gen

    @property
    def rotated(self) -> bool:
        return self.state.key_generation != self.base.key_generation

    # ----------------------------------------------------------------- grants
    def grant(
        self,
        key: str,
        epoch: int,
        target_kind: str,
        target: str,
        generation: int,
        receiving: PREPublicKey,
        expires: int | None = None,
    ) -> None:
        secret = self.secrets.epoch_secret(key, epoch)
        if secret is None:
            raise KeyError(f"this admin lacks epoch {epoch} of {key!r}")
        kfrag = _umbral.make_kfrag(secret, receiving, self.secrets.kfrag_signer)
        self.grants.append(
            {
                "key": key,
                "epoch": epoch,
                "target_kind": target_kind,
                "target": target,
                "target_generation": generation,
                "kfrag": b64e(kfrag),
                "expires": expires,
            }
        )

    def grant_device(self, key: str, device_id: str, pre: PREPublicKey) -> None:
        """A device reads an items collection through its newest epoch only."""
        self.grant(key, self.state.collection(key).current_epoch, "device", device_id, 0, pre)

    def delete_grants(self, key: str, target_kind: str, target: str) -> None:
        self.deletes.append({"key": key, "target_kind": target_kind, "target": target})

    # ------------------------------------------------------------------ items
    def put_item(
        self,
        collection: str,
        item_id: str,
        plaintext: bytes,
        version: int,
        writer: str,
        signer: SigningKey,
    ) -> None:
        coll = self.state.collection(collection)
        key = self.data_keys.get((collection, coll.current_epoch))
        secret = self.secrets.epoch_secret(collection, coll.current_epoch)
        if key is None and secret is not None:
            key = data_key(secret, coll.current)
        if key is None:
            raise KeyError(f"no data key for the current epoch of {collection!r}")
        epoch = coll.current_epoch
        self.items.append(
            (
                collection,
                seal_item(
                    key,
                    account=self.account,
                    collection=collection,
                    item_id=item_id,
                    version=version,
                    epoch=epoch,
                    plaintext=plaintext,
                    writer=writer,
                ),
                signer,
            )
        )

    def _signed_items(self) -> list[tuple[str, SealedItem]]:
        """The items, signed per (collection, writer) as the writes they are."""
        groups: dict[tuple[str, str], list[SealedItem]] = {}
        signers: dict[str, SigningKey] = {}
        for coll, item, signer in self.items:
            groups.setdefault((coll, item.writer), []).append(item)
            signers[item.writer] = signer
        return [
            (coll, signed)
            for (coll, writer), items in groups.items()
            for signed in sign_items(
                signers[writer], account=self.account, collection=coll, items=items
            )
        ]

    # ---------------------------------------------------------------- the wire
    def to_json(self, *, with_recovery: bool = True) -> dict[str, Any]:
        body: dict[str, Any] = {
            "base": {"seq": self.base.seq, "head": self.base.head},
            "entries": [e.to_json() for e in self.entries],
            "grants": self.grants,
            "delete_grants": self.deletes,
            "items": [{"collection": c, **i.to_json()} for c, i in self._signed_items()],
        }
        if with_recovery:
            body["recovery_blob"] = b64e(recovery_blob(self.secrets))
        return body
