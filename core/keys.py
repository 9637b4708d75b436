"""The key sets a device and an account hold, and their keystore encodings.

See the key table in docs/DESIGN.md: a device holds its own signing, PRE and SSH
keys plus the sharing keys of its account; an admin device also holds the
account's secrets (signing key, kfrag signer, collection keys).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ._encoding import b64d, b64e, canonical_json, parse_json_object
from ._umbral import PREPublicKey, PRESecretKey
from .chain import device_id_for
from .crypto import SigningKey
from .errors import FormatError, UnsupportedVersion

__all__ = ["AccountSecrets", "DeviceKeys", "format_recovery_key", "parse_recovery_key"]


@dataclass(frozen=True)
class DeviceKeys:
    """Keys that never leave this device."""

    signing: SigningKey
    pre: PRESecretKey
    ssh: SigningKey

    @classmethod
    def generate(cls) -> DeviceKeys:
        return cls(SigningKey.generate(), PRESecretKey.generate(), SigningKey.generate())

    @property
    def device_id(self) -> str:
        return device_id_for(self.signing.verify_key)

    def public_body(self, name: str) -> dict[str, Any]:
        """The device fields of a ``device-added`` chain entry."""
        return {
            "id": self.device_id,
            "name": name,
            "signing_key": b64e(self.signing.verify_key.raw),
            "pre_key": b64e(self.pre.public_key.raw),
            "ssh_key": b64e(self.ssh.verify_key.raw),
        }

    def to_json(self) -> dict[str, str]:
        return {
            "signing": b64e(self.signing.to_bytes()),
            "pre": b64e(self.pre.to_bytes()),
            "ssh": b64e(self.ssh.to_bytes()),
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> DeviceKeys:
        return cls(
            SigningKey(b64d(obj.get("signing"), size=32, what="signing key")),
            PRESecretKey(b64d(obj.get("pre"), size=32, what="PRE key")),
            SigningKey(b64d(obj.get("ssh"), size=32, what="SSH key")),
        )


@dataclass
class AccountSecrets:
    """What an admin device (or the recovery key) holds for the whole account: the current
    account key and kfrag signer, every epoch secret of every collection, every sharing key.

    Admins keep it as the ``secrets`` item of ``_admin``; before changing it, an admin merges
    the newest copy (:meth:`merge`), so a key it lacks is never dropped."""

    account_key: SigningKey
    kfrag_signer: PRESecretKey
    recovery_key: PREPublicKey
    key_generation: int = 0
    epochs: dict[str, dict[int, PRESecretKey]] = field(default_factory=dict)
    sharing: dict[int, PRESecretKey] = field(default_factory=dict)

    @classmethod
    def generate(cls, recovery_key: PREPublicKey) -> AccountSecrets:
        return cls(
            SigningKey.generate(),
            PRESecretKey.generate(),
            recovery_key,
            0,
            {},
            {0: PRESecretKey.generate()},
        )

    def epoch_secret(self, collection: str, epoch: int) -> PRESecretKey | None:
        return self.epochs.get(collection, {}).get(epoch)

    def current_secret(self, collection: str) -> tuple[int, PRESecretKey] | None:
        known = self.epochs.get(collection)
        if not known:
            return None
        newest = max(known)
        return newest, known[newest]

    def merge(self, other: AccountSecrets) -> AccountSecrets:
        """Both copies' keys; the newer account key generation wins."""
        newer = other if other.key_generation > self.key_generation else self
        epochs = {c: dict(e) for c, e in self.epochs.items()}
        for c, e in other.epochs.items():
            epochs.setdefault(c, {}).update({k: v for k, v in e.items() if k not in epochs[c]})
        sharing = {**other.sharing, **self.sharing}
        return AccountSecrets(
            newer.account_key,
            newer.kfrag_signer,
            self.recovery_key,
            newer.key_generation,
            epochs,
            sharing,
        )

    def to_bytes(self) -> bytes:
        return canonical_json(
            {
                "v": SECRETS_VERSION,
                "account_key": b64e(self.account_key.to_bytes()),
                "key_generation": self.key_generation,
                "kfrag_signer": b64e(self.kfrag_signer.to_bytes()),
                "recovery_key": b64e(self.recovery_key.raw),
                "epochs": {
                    c: {str(k): b64e(v.to_bytes()) for k, v in e.items()}
                    for c, e in self.epochs.items()
                },
                "sharing": {str(k): b64e(v.to_bytes()) for k, v in self.sharing.items()},
            }
        )

    @classmethod
    def from_bytes(cls, raw: bytes) -> AccountSecrets:
        obj = parse_json_object(raw, what="account secrets")
        if obj.get("v") != SECRETS_VERSION:
            raise UnsupportedVersion(
                f"account secrets of version {obj.get('v')!r}; this Keystead reads "
                f"version {SECRETS_VERSION}"
            )
        epochs, sharing, gen = obj.get("epochs"), obj.get("sharing"), obj.get("key_generation")
        if (
            not isinstance(epochs, dict)
            or not isinstance(sharing, dict)
            or type(gen) is not int
            or not all(isinstance(e, dict) for e in epochs.values())
        ):
            raise FormatError("account secrets: malformed")
        return cls(
            SigningKey(b64d(obj.get("account_key"), size=32, what="account key")),
            PRESecretKey(b64d(obj.get("kfrag_signer"), size=32, what="kfrag signer")),
            PREPublicKey(b64d(obj.get("recovery_key"), size=33, what="recovery key")),
            gen,
            {
                c: {_gen(k): PRESecretKey(b64d(v, size=32, what="epoch key")) for k, v in e.items()}
                for c, e in epochs.items()
            },
            {
                _gen(k): PRESecretKey(b64d(v, size=32, what="sharing key"))
                for k, v in sharing.items()
            },
        )


SECRETS_VERSION = 2


def _gen(text: str) -> int:
    if not text.isdigit() or len(text) > 9:
        raise FormatError("account secrets: malformed generation")
    return int(text)


_RECOVERY_PREFIX = "KSR1-"


def format_recovery_key(sk: PRESecretKey) -> str:
    """The recovery key as a person writes it down: no spaces, unambiguous alphabet."""
    return _RECOVERY_PREFIX + base64.b32encode(sk.to_bytes()).decode().rstrip("=")


def parse_recovery_key(text: str) -> PRESecretKey:
    text = text.strip().upper().replace(" ", "").replace("-", "")
    if not text.startswith("KSR1"):
        raise FormatError("not a Keystead recovery key (it starts with KSR1-)")
    body = text[4:]
    try:
        raw = base64.b32decode(body + "=" * (-len(body) % 8))
    except ValueError as e:
        raise FormatError("recovery key: invalid characters") from e
    if len(raw) != 32:
        raise FormatError("recovery key: wrong length")
    return PRESecretKey(raw)
