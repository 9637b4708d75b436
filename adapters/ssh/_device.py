"""The ssh adapter on a device: its own key, the synced ``ssh`` collection, the agent's keys.

``device_agent_key`` turns the device's SSH seed into the key the agent serves;
``SshItems`` reads and writes imported keys and known hosts; ``DeviceKeySource``
is the agent's key provider: a background thread re-checks the chain and syncs
every few seconds, so a signature never waits on the network, a removed device
stops being served within one interval, and an unreachable service changes nothing.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar, cast

from cryptography.hazmat.primitives.asymmetric import ed25519
from keystead.core import (
    Collection,
    DeviceRemoved,
    KeysteadError,
    NetworkError,
    VerificationError,
    atomic_write,
)

from ._items import (
    COLLECTION,
    HOST_PREFIX,
    KEY_PREFIX,
    ImportedKey,
    decode_host,
    decode_key,
)
from ._keys import MAX_IMPORTED_KEYS, AgentKey
from ._known_hosts import KnownHost

if TYPE_CHECKING:
    from keystead.core import Device

__all__ = [
    "DeviceKeySource",
    "SshItems",
    "device_agent_key",
    "known_hosts_file",
    "write_known_hosts_file",
]

log = logging.getLogger(__name__)


def device_agent_key(device: Device) -> AgentKey:
    """The device's own Ed25519 SSH key; refuses one that differs from the chain's."""
    private = ed25519.Ed25519PrivateKey.from_private_bytes(device.keys.ssh.to_bytes())
    key = AgentKey(private, f"keystead:{device.account}:{device.name}")
    if device.keys.ssh.verify_key.raw != key.public_blob[-32:]:
        raise VerificationError("the device SSH key does not match its seed")
    return key


def check_device_key(device: Device, key: AgentKey) -> None:
    """The chain must publish exactly this key for this device (fail closed otherwise)."""
    if device.me().ssh_key != key.public_blob[-32:]:
        raise VerificationError("the chain lists another SSH key for this device")


def known_hosts_file(device: Device) -> Path:
    """The plain known_hosts export ``known-hosts command`` reads without unlocking."""
    return device.home.path / "ssh" / "known_hosts"


def write_known_hosts_file(device: Device, entries: list[KnownHost]) -> None:
    text = "".join(e.line + "\n" for e in sorted(entries, key=lambda e: e.line))
    path = known_hosts_file(device)
    try:
        if path.read_text() == text:
            return
    except (OSError, UnicodeDecodeError):
        pass
    atomic_write(path, text.encode(), durable=False)


T = TypeVar("T")


def admin_only_host(entry: KnownHost) -> bool:
    """A line that speaks for many hosts: a certificate authority, a wildcard or a negation."""
    return entry.marker == "@cert-authority" or any(c in p for p in entry.patterns for c in "*?!")


class SshItems:
    """Imported keys and known hosts in the device's ``ssh`` collection."""

    def __init__(self, device: Device) -> None:
        self.device = device
        self.collection = Collection(device, COLLECTION)
        self._parsed: dict[tuple[str, int], object] = {}  # decoded items, by (id, version)

    def sync(self, *, refresh_chain: bool = True) -> None:
        self.collection.sync(refresh_chain=refresh_chain)

    def _decoded(
        self, prefix: str, decode: Callable[[str, bytes], T], admin_only: Callable[[T], bool]
    ) -> list[tuple[str, T]]:
        """Items whose id starts with ``prefix``, decoded once per version (the agent reads
        them every few seconds); an unreadable one is logged and skipped, and so is one that
        ``admin_only`` says only an admin may write but a member wrote."""
        out = []
        for rec in self.collection.records():
            if not rec.id.startswith(prefix):
                continue
            cached = self._parsed.get((rec.id, rec.version))
            if cached is None:
                try:
                    cached = self._parsed[(rec.id, rec.version)] = decode(rec.id, rec.plaintext)
                except KeysteadError:
                    log.warning("skipping unreadable ssh item %s", rec.id)
                    continue
            if not rec.by_admin and admin_only(cast(T, cached)):
                log.warning(
                    "skipping ssh item %s: only an admin device may write it, and "
                    "device %s is not one",
                    rec.id,
                    rec.writer,
                )
                continue
            out.append((rec.id, cast(T, cached)))
        return out

    def imported_keys(self) -> list[ImportedKey]:
        """Imported keys, as admins wrote them: a member's would log in everywhere."""
        return sorted(
            (k for _, k in self._decoded(KEY_PREFIX, decode_key, lambda _: True)),
            key=lambda k: k.item_id,
        )

    def served_keys(self) -> list[ImportedKey]:
        """The imported keys every agent serves (and sshd is told about): the first
        ``MAX_IMPORTED_KEYS`` by id, the same on every device."""
        return self.imported_keys()[:MAX_IMPORTED_KEYS]

    def known_hosts(self) -> list[tuple[str, KnownHost]]:
        """Known hosts; a certificate authority or a wildcard line counts only if an admin
        wrote it (a member's ``@cert-authority *`` would vouch for every host)."""
        return self._decoded(HOST_PREFIX, decode_host, admin_only_host)

    def export_known_hosts(self) -> None:
        write_known_hosts_file(self.device, [e for _, e in self.known_hosts()])


class DeviceKeySource:
    """The agent's key provider for one device: device key first, then imported keys.

    ``__call__`` only reads a snapshot. ``start()`` runs ``refresh()`` every
    ``interval`` seconds on a daemon thread, with its own ``Device`` handle (the
    local cache is an SQLite connection bound to the thread that opened it).
    """

    def __init__(
        self,
        device: Device,
        *,
        interval: float = 3.0,
        open_device: Callable[[], Device] | None = None,
    ) -> None:
        self.device_key = device_agent_key(device)
        self._open = open_device or (lambda: type(device)(device.home, device.keystore))
        self._interval = interval
        self._keys: tuple[AgentKey, ...] = (self.device_key,)
        self._host_names: dict[bytes, list[str]] = {}
        self._stop = threading.Event()
        self._first_check = threading.Event()
        self._thread: threading.Thread | None = None
        self.removed = False

    def __call__(self) -> tuple[AgentKey, ...]:
        return self._keys

    def host_names(self, host_key_blob: bytes) -> list[str]:
        """Names the synced known_hosts gives this host key (for confirmation prompts)."""
        return self._host_names.get(host_key_blob, [])

    def start(self, wait: float = 10.0) -> None:
        """Start refreshing; return once the first check is done (or after ``wait`` seconds),
        so the agent's first answer already holds every key, not just the device's."""
        self._thread = threading.Thread(target=self._run, name="ssh-keys", daemon=True)
        self._thread.start()
        self._first_check.wait(wait)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        try:
            device = self._open()
            try:
                items = SshItems(device)
                self._load(device, items, online=False)
                while not self._stop.is_set():
                    self._load(device, items, online=True)
                    self._first_check.set()
                    self._stop.wait(self._interval)
            finally:
                device.close()
        finally:
            self._first_check.set()  # never leave start() waiting on a thread that died

    def _load(self, device: Device, items: SshItems, *, online: bool) -> None:
        if self.removed:
            return
        try:
            self.refresh(device, items, online=online)
        except NetworkError:
            log.info("keystead service unreachable; keeping the current ssh keys")
        except DeviceRemoved:
            log.warning("this device was removed from the account; serving no ssh keys")
            self.removed, self._keys = True, ()
        except KeysteadError as e:
            log.warning("ssh keys not refreshed (%s); serving none until the next check", e)
            self._keys = ()

    def refresh(self, device: Device, items: SshItems, *, online: bool) -> None:
        """One check: chain (and this device's key in it), then the ``ssh`` collection."""
        state = device.chain(refresh=online)
        me = device.me(state)
        check_device_key(device, self.device_key)
        keys: list[AgentKey] = [self.device_key]
        if me.can_read(COLLECTION):
            if online:
                items.sync(refresh_chain=False)  # verified just above
            keys += [k.key for k in items.served_keys()]
            hosts = items.known_hosts()
            names: dict[bytes, list[str]] = {}
            for _, entry in hosts:
                if entry.marker is None and entry.patterns:
                    names.setdefault(entry.key.blob, []).extend(entry.patterns)
            self._host_names = names
            write_known_hosts_file(device, [e for _, e in hosts])
        self._keys = tuple(keys)
