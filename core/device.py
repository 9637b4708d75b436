"""A device's view of its account: the handle adapters build on.

``Device.open(home, passphrase)`` unlocks the keystore; from there the device
verifies its account chain (pinning the account key and the newest head it has
seen), reads collections through its grants, re-encrypts capsules at a
service, and signs every request it makes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from . import _umbral
from ._encoding import b64d, b64e
from ._umbral import PREPublicKey, PRESecretKey
from .chain import (
    ChainState,
    CollectionInfo,
    DeviceInfo,
    SignedEntry,
    check_head,
    verify_chain,
)
from .client import ServiceClient, Signer, path
from .crypto import VerifyKey
from .epochs import data_key, previous_secret, walk_back
from .errors import DecryptionFailed, DeviceRemoved, FormatError, VerificationError
from .home import Home, LocalCache
from .keys import AccountSecrets, DeviceKeys
from .keystore import Keystore
from .sealed import SealedKey

if TYPE_CHECKING:
    import httpx

__all__ = ["Device", "fetch_chain"]


def fetch_chain(
    client: ServiceClient,
    account: str,
    *,
    cached: Sequence[SignedEntry] = (),
    pinned_key: VerifyKey | None = None,
    base: ChainState | None = None,
) -> tuple[ChainState, list[SignedEntry]]:
    """Fetch and verify an account chain, extending ``cached`` entries when given. ``base``,
    the verified state of exactly ``cached``, spares verifying them again: only what is new
    is checked, as its continuation."""
    entries = list(cached)
    new = [
        SignedEntry.from_json(e)
        for e in client.get(
            path("accounts", account, "chain"), params={"after": len(entries) - 1}, signed=False
        )["entries"]
    ]
    entries += new
    # Entries are hash-linked: the same head digest means the same chain up to it.
    if (
        base is not None
        and cached
        and base.seq == len(cached) - 1
        and base.head == cached[-1].digest
    ):
        return base.extend(new), entries
    return verify_chain(entries, account=account, account_key=pinned_key), entries


class Device:
    """An unlocked device. Not thread-safe; one per process is the normal use."""

    def __init__(
        self,
        home: Home,
        keystore: Keystore,
        *,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.home = home
        self.keystore = keystore
        info = home.read_device()
        self.server: str = info["server"]
        self.account: str = info["account"]
        self.name: str = info["name"]
        self.keys = DeviceKeys.from_json(keystore.data["device"])
        self.device_id = self.keys.device_id
        self.clock = clock
        self._transport = transport
        self._clients: dict[str, ServiceClient] = {}  # by server URL, this one's included
        self._chain: ChainState | None = None
        self._cache: LocalCache | None = None

    @classmethod
    def open(cls, home: Home, passphrase: str, **kw: Any) -> Device:
        return cls(home, Keystore.open(home.keystore, passphrase), **kw)

    @property
    def client(self) -> ServiceClient:
        """The signed client for this device's service (created on first use: httpx is slow
        to import, and reading the local cache needs no network)."""
        return self.client_for(None)

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()
        if self._cache is not None:
            self._cache.close()

    def __enter__(self) -> Device:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @property
    def address(self) -> str:
        """``name@host[:port]``: how other accounts name this one."""
        host = urlsplit(self.server).netloc
        return f"{self.account}@{host}"

    @property
    def cache(self) -> LocalCache:
        if self._cache is None:
            self._cache = self.home.cache()
        return self._cache

    def save(self, *, durable: bool = True) -> None:
        self.keystore.save(durable=durable)

    # ------------------------------------------------------------------ chain
    def chain(self, *, refresh: bool = True) -> ChainState:
        """The verified account chain; with ``refresh``, first fetch what is new."""
        if self._chain is not None and not refresh:
            return self._chain
        data = self.keystore.data
        pinned = VerifyKey(b64d(data["account_key"], size=32, what="pinned account key"))
        cached = self.home.read_chain()
        if refresh:
            state, entries = fetch_chain(
                self.client, self.account, cached=cached, pinned_key=pinned, base=self._chain
            )
        else:
            entries = cached
            state = verify_chain(entries, account=self.account, account_key=pinned)
        seen = data.get("seen", {"seq": -1, "head": ""})
        check_head(state, seen["seq"], seen["head"])
        if len(entries) != len(cached):
            self.home.write_chain(entries)
        if state.seq != seen["seq"]:
            data["seen"] = {"seq": state.seq, "head": state.head}
            self.save()
        self._chain = state
        return state

    def me(self, state: ChainState | None = None) -> DeviceInfo:
        """This device's chain entry; ``DeviceRemoved`` once it has been removed."""
        state = state or self.chain(refresh=False)
        dev = state.devices.get(self.device_id)
        if dev is None or not dev.live:
            raise DeviceRemoved(f"this device has been removed from account {self.account}")
        return dev

    @property
    def secrets(self) -> AccountSecrets | None:
        raw = self.keystore.data.get("secrets")
        return None if raw is None else AccountSecrets.from_bytes(b64d(raw, what="secrets"))

    def set_secrets(self, secrets: AccountSecrets) -> None:
        self.keystore.data["secrets"] = b64e(secrets.to_bytes())
        self.save()

    # ------------------------------------------------------------ re-encryption
    def client_for(self, server: str | None) -> ServiceClient:
        """The signed client for ``server`` (None: this device's own), kept until ``close``."""
        if server is None or server.rstrip("/") == self.server.rstrip("/"):
            server = self.server
        url = server.rstrip("/")
        client = self._clients.get(url)
        if client is None:
            client = self._clients[url] = ServiceClient(
                server,
                transport=self._transport,
                clock=self.clock,
                signer=Signer(self.account, self.device_id, self.keys.signing),
            )
        return client

    def reencrypt(
        self,
        owner: str,
        requests: Sequence[tuple[str, int, bytes]],
        *,
        context: str = "",
        server: str | None = None,
    ) -> list[tuple[bytes, int]]:
        """Ask ``owner``'s service for cfrags, one per (key, epoch, capsule); in order. Each
        comes with the generation of the key it was made for (the sharing key's, for grants
        to an account)."""
        out: list[tuple[bytes, int]] = []
        for start in range(0, len(requests), 10_000):
            chunk = requests[start : start + 10_000]
            resp = self.client_for(server).post(
                path("accounts", owner, "reencrypt"),
                {
                    "requests": [{"key": k, "epoch": e, "capsule": b64e(c)} for k, e, c in chunk],
                    "context": context,
                },
            )
            cfrags = resp.get("cfrags")
            if not isinstance(cfrags, list) or len(cfrags) != len(chunk):
                raise FormatError("the service answered with the wrong number of cfrags")
            for c in cfrags:
                gen = c.get("generation") if isinstance(c, dict) else None
                if type(gen) is not int:
                    raise FormatError("malformed cfrag answer")
                out.append((b64d(c.get("cfrag"), what="cfrag"), gen))
        return out

    def epoch_keys(self, collection: str, epochs: Sequence[int]) -> dict[int, bytes]:
        """Data keys of ``collection``'s epochs: from the keystore cache, else one
        re-encryption of the newest epoch's key (or an admin's own secret), walking back."""
        cache: dict[str, str] = self.keystore.data.setdefault("epoch_keys", {})
        out = {e: b64d(cache[f"{collection}:{e}"]) for e in epochs if f"{collection}:{e}" in cache}
        missing = set(epochs) - set(out)
        if not missing:
            return out
        state = self.chain(refresh=False)
        coll = state.collection(collection)
        if coll.kind != "items" or not missing <= set(coll.epochs):
            raise VerificationError(f"{collection}: an item names an epoch the chain lacks")
        # Walk down from the nearest epoch above the oldest missing one that is cached (or
        # the newest, through one re-encryption), keeping every key on the way.
        above = [e for e in coll.epochs if e > min(missing) and f"{collection}:{e}" in cache]
        if above and min(above) > max(missing):
            start = min(above)
            key = b64d(cache[f"{collection}:{start}"])
        else:
            start = coll.current_epoch
            key = self._newest_data_key(state, coll)
        found = walk_back(self.account, coll, start, key, missing | {start})
        for e, k in found.items():
            cache[f"{collection}:{e}"] = b64e(k)
        self.save(durable=False)  # a cache: lost keys are fetched again
        return {**out, **{e: found[e] for e in missing}}

    def _newest_data_key(self, state: ChainState, coll: CollectionInfo) -> bytes:
        info = coll.current
        secrets = self.secrets
        own = secrets.epoch_secret(coll.name, info.epoch) if secrets is not None else None
        if own is not None:
            return data_key(own, info)
        assert info.capsule is not None and info.ciphertext is not None  # items epoch
        [(cfrag, _)] = self.reencrypt(self.account, [(coll.name, info.epoch, info.capsule)])
        key = self._open_reencrypted(
            state, info.public_key, self.keys.pre, info.capsule, info.ciphertext, cfrag
        )
        if len(key) != 32:
            raise DecryptionFailed()
        return key

    def _open_reencrypted(
        self,
        owner: ChainState,
        delegating: PREPublicKey,
        receiver: PRESecretKey,
        capsule: bytes,
        ciphertext: bytes,
        cfrag: bytes,
    ) -> bytes:
        _umbral.verify_cfrag(
            cfrag,
            capsule=capsule,
            signer=owner.kfrag_signer,
            delegating=delegating,
            receiving=receiver.public_key,
        )
        return _umbral.decrypt_reencrypted(receiver, delegating, capsule, [cfrag], ciphertext)

    def open_sealed(
        self,
        owner: ChainState,
        sealed: Sequence[SealedKey],
        *,
        context: str = "",
        server: str | None = None,
    ) -> list[bytes]:
        """Open sealed-key records of ``owner``'s account (this one's or another's).

        This account's items collections: an admin's own epoch secrets, else the device's
        grant on the newest epoch, and older epochs by walking back. Keys collections
        (labels, groups) and other accounts': one re-encryption per record, through the
        grant to this account's sharing key (audited by the owner's service)."""
        out: list[bytes | None] = [None] * len(sealed)
        remote: list[int] = []
        for i, rec in enumerate(sealed):
            if rec.owner != owner.account:
                raise VerificationError("a sealed key names another owner than expected")
            coll = owner.collection(rec.key)
            coll.epoch(rec.epoch)
            if owner.account == self.account:
                sk = self._own_epoch_secret(coll, rec.epoch)
                if sk is not None:
                    out[i] = _umbral.decrypt(sk, rec.capsule, rec.ciphertext)
                    continue
            remote.append(i)
        if remote:
            cfrags = self.reencrypt(
                owner.account,
                [(sealed[i].key, sealed[i].epoch, sealed[i].capsule) for i in remote],
                context=context,
                server=server,
            )
            mine = self.chain(refresh=False)
            for i, (cfrag, gen) in zip(remote, cfrags, strict=True):
                rec = sealed[i]
                coll = owner.collection(rec.key)
                pk = coll.epoch(rec.epoch).public_key
                if owner.account == self.account and coll.kind == "items":
                    receiver = self.keys.pre
                elif gen in mine.sharing_keys:
                    receiver = self.sharing_secret(gen)
                else:
                    raise VerificationError("a cfrag for an unknown sharing key generation")
                out[i] = self._open_reencrypted(
                    owner, pk, receiver, rec.capsule, rec.ciphertext, cfrag
                )
        return [o for o in out if o is not None]

    def _own_epoch_secret(self, coll: CollectionInfo, epoch: int) -> PRESecretKey | None:
        """An epoch secret of this account's collection that opens without the service: an
        admin's own, or an older items epoch's by walking back from the next epoch's data
        key; None when only a grant opens it."""
        secrets = self.secrets
        own = secrets.epoch_secret(coll.name, epoch) if secrets is not None else None
        if own is not None or epoch == coll.current_epoch or coll.kind != "items":
            return own
        key = self.epoch_keys(coll.name, [epoch + 1])[epoch + 1]
        return previous_secret(self.account, coll, epoch + 1, key)

    def sharing_secret(self, generation: int) -> PRESecretKey:
        """The account's sharing key of ``generation`` (synced through ``_account``), checked
        against the chain's public key before it is trusted or cached."""
        known: dict[str, str] = self.keystore.data.setdefault("sharing", {})
        state = self.chain(refresh=False)
        if generation not in state.sharing_keys:
            raise VerificationError("a sharing key generation the chain lacks")
        if str(generation) not in known:
            from .collections import Collection

            coll = Collection(self, "_account")
            coll.sync(refresh_chain=False)
            rec = coll.get(f"sharing-{generation}")
            if rec is None or not rec.by_admin:
                raise DecryptionFailed("this device does not hold that sharing key")
            sk = PRESecretKey(rec.plaintext)
            if sk.public_key != state.sharing_keys[generation]:
                raise VerificationError("the stored sharing key does not match the chain")
            known[str(generation)] = b64e(rec.plaintext)
            self.save()
        return PRESecretKey(b64d(known[str(generation)], size=32, what="sharing key"))

    def peer_chain(self, account: str, server: str | None = None) -> ChainState:
        """Another account's verified chain, pinning its key on first use (TOFU)."""
        peers: dict[str, Any] = self.keystore.data.setdefault("peers", {})
        ref = f"{account}@{(server or self.server).rstrip('/')}"
        pin = peers.get(ref)
        pinned = VerifyKey(b64d(pin["key"], size=32)) if pin else None
        state, _ = fetch_chain(self.client_for(server), account, pinned_key=pinned)
        if pin:
            check_head(state, pin["seq"], pin["head"])
        if pin is None or pin["seq"] != state.seq:
            peers[ref] = {"key": b64e(state.account_key.raw), "seq": state.seq, "head": state.head}
            self.save()
        return state
