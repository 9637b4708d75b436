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
from .errors import FormatError

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
        return {"signing": b64e(self.signing.to_bytes()), "pre": b64e(self.pre.to_bytes()),
                "ssh": b64e(self.ssh.to_bytes())}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> DeviceKeys:
        return cls(SigningKey(b64d(obj.get("signing"), size=32, what="signing key")),
                   PRESecretKey(b64d(obj.get("pre"), size=32, what="PRE key")),
                   SigningKey(b64d(obj.get("ssh"), size=32, what="SSH key")))


@dataclass
class AccountSecrets:
    """What an admin device (or the recovery key) holds for the whole account."""

    account_key: SigningKey
    kfrag_signer: PRESecretKey
    recovery_key: PREPublicKey
    collections: dict[str, PRESecretKey] = field(default_factory=dict)
    sharing: dict[int, PRESecretKey] = field(default_factory=dict)

    @classmethod
    def generate(cls, recovery_key: PREPublicKey) -> AccountSecrets:
        return cls(SigningKey.generate(), PRESecretKey.generate(), recovery_key,
                   {}, {0: PRESecretKey.generate()})

    def to_bytes(self) -> bytes:
        return canonical_json({
            "v": 1,
            "account_key": b64e(self.account_key.to_bytes()),
            "kfrag_signer": b64e(self.kfrag_signer.to_bytes()),
            "recovery_key": b64e(self.recovery_key.raw),
            "collections": {k: b64e(v.to_bytes()) for k, v in self.collections.items()},
            "sharing": {str(k): b64e(v.to_bytes()) for k, v in self.sharing.items()},
        })

    @classmethod
    def from_bytes(cls, raw: bytes) -> AccountSecrets:
        obj = parse_json_object(raw, what="account secrets")
        if obj.get("v") != 1:
            raise FormatError("unsupported account secrets version")
        colls, sharing = obj.get("collections"), obj.get("sharing")
        if not isinstance(colls, dict) or not isinstance(sharing, dict):
            raise FormatError("account secrets: malformed")
        return cls(
            SigningKey(b64d(obj.get("account_key"), size=32, what="account key")),
            PRESecretKey(b64d(obj.get("kfrag_signer"), size=32, what="kfrag signer")),
            PREPublicKey(b64d(obj.get("recovery_key"), size=33, what="recovery key")),
            {k: PRESecretKey(b64d(v, size=32, what="collection key")) for k, v in colls.items()},
            {int(k): PRESecretKey(b64d(v, size=32, what="sharing key"))
             for k, v in sharing.items()},
        )


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

