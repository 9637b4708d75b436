"""SSH keys the agent serves: the device's Ed25519 key and imported Ed25519/RSA keys.

Loading and serializing is left to ``cryptography``'s OpenSSH support; this
module only adds what it lacks: the SSH signature blob an agent returns and
the public-key line and fingerprint formats.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa
from keystead.core.errors import FormatError, KeysteadError

from . import _wire

__all__ = [
    "SIGN_FLAG_RSA_SHA2_256",
    "SIGN_FLAG_RSA_SHA2_512",
    "AgentKey",
    "KeyPassphraseRequired",
    "PublicKey",
    "UnsupportedSignRequest",
    "authorized_keys_line",
    "generate_device_key",
    "load_private_key",
    "load_private_key_file",
]

SIGN_FLAG_RSA_SHA2_256 = 2
SIGN_FLAG_RSA_SHA2_512 = 4
_KNOWN_FLAGS = SIGN_FLAG_RSA_SHA2_256 | SIGN_FLAG_RSA_SHA2_512
MIN_RSA_BITS = 2048
_MAX_LINE = 16 * 1024

_PrivateKey = ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey


class KeyPassphraseRequired(KeysteadError):
    """The private key file is encrypted and no passphrase was given."""


class UnsupportedSignRequest(KeysteadError):
    """The key cannot sign as asked (SHA-1 RSA, unknown flags): the agent answers FAILURE."""


def _check_text(value: str, what: str) -> None:
    if any(c in value for c in "\r\n\x00"):
        raise ValueError(f"{what} must be one line")


@dataclass(frozen=True, eq=False)
class PublicKey:
    """An SSH public key: its wire blob (the authority) plus a display comment.

    Two keys are equal when their blobs are: the comment is only a label.
    """

    blob: bytes
    comment: str = ""
    algorithm: str = field(init=False)

    def __post_init__(self) -> None:
        _check_text(self.comment, "comment")
        try:
            algorithm = _wire.Reader(self.blob).text()
            serialization.load_ssh_public_key(self._line_bytes(algorithm))
        except (ValueError, FormatError, UnsupportedAlgorithm) as e:
            raise FormatError("not a valid SSH public key") from e
        object.__setattr__(self, "algorithm", algorithm)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PublicKey) and other.blob == self.blob

    def __hash__(self) -> int:
        return hash(self.blob)

    def _line_bytes(self, algorithm: str) -> bytes:
        return algorithm.encode() + b" " + base64.b64encode(self.blob)

    @classmethod
    def from_line(cls, line: str) -> PublicKey:
        """Parse ``TYPE BASE64 [COMMENT]`` (an authorized_keys line without options)."""
        if len(line) > _MAX_LINE:
            raise FormatError("SSH public key line is too long")
        parts = line.strip().split(None, 2)
        if len(parts) < 2:
            raise FormatError("SSH public key line needs a type and a key")
        try:
            blob = base64.b64decode(parts[1], validate=True)
        except binascii.Error as e:
            raise FormatError("SSH public key is not valid base64") from e
        key = cls(blob, parts[2].strip() if len(parts) == 3 else "")
        if key.algorithm != parts[0]:
            raise FormatError("SSH public key type does not match its blob")
        return key

    def line(self) -> str:
        """``TYPE BASE64 COMMENT``, as in ``id_ed25519.pub``."""
        text = self._line_bytes(self.algorithm).decode()
        return f"{text} {self.comment}" if self.comment else text

    @property
    def fingerprint(self) -> str:
        """OpenSSH's ``SHA256:...`` fingerprint, as ``ssh-add -l`` prints it."""
        digest = base64.b64encode(hashlib.sha256(self.blob).digest()).decode()
        return "SHA256:" + digest.rstrip("=")


@dataclass(frozen=True, eq=False)
class AgentKey:
    """A private key the agent can sign with; compares by its public blob."""

    private: _PrivateKey = field(repr=False)
    comment: str = ""
    public: PublicKey = field(init=False)

    def __post_init__(self) -> None:
        if isinstance(self.private, rsa.RSAPrivateKey):
            if self.private.key_size < MIN_RSA_BITS:
                raise FormatError(f"RSA keys under {MIN_RSA_BITS} bits are refused")
        elif not isinstance(self.private, ed25519.Ed25519PrivateKey):
            raise FormatError("only Ed25519 and RSA keys are supported")
        line = self.private.public_key().public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
        )
        blob = base64.b64decode(line.split()[1])
        object.__setattr__(self, "public", PublicKey(blob, self.comment))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AgentKey) and other.public.blob == self.public.blob

    def __hash__(self) -> int:
        return hash(self.public.blob)

    @property
    def public_blob(self) -> bytes:
        """The SSH wire encoding of the public key, which identifies the key to clients."""
        return self.public.blob

    def sign(self, data: bytes, flags: int = 0) -> bytes:
        """Return an SSH signature blob over ``data``.

        RSA signs only with SHA-2 (flags 2 or 4): SHA-1 ``ssh-rsa`` is refused.
        Ed25519 ignores the RSA flags, as OpenSSH's agent does.
        """
        if flags & ~_KNOWN_FLAGS:
            raise UnsupportedSignRequest("unknown signature flags")
        if isinstance(self.private, ed25519.Ed25519PrivateKey):
            return _wire.string("ssh-ed25519") + _wire.string(self.private.sign(data))
        digest: hashes.HashAlgorithm
        if flags & SIGN_FLAG_RSA_SHA2_256:
            name, digest = "rsa-sha2-256", hashes.SHA256()
        elif flags & SIGN_FLAG_RSA_SHA2_512:
            name, digest = "rsa-sha2-512", hashes.SHA512()
        else:
            raise UnsupportedSignRequest("SHA-1 RSA signatures are refused")
        sig = self.private.sign(data, padding.PKCS1v15(), digest)
        return _wire.string(name) + _wire.string(sig)

    def private_openssh(self, passphrase: bytes | None = None) -> bytes:
        """The private key as an OpenSSH key file (for the keystore or export)."""
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(passphrase)
            if passphrase
            else serialization.NoEncryption()
        )
        return self.private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, encryption
        )


def generate_device_key(comment: str) -> AgentKey:
    """A fresh Ed25519 key for this device's SSH logins."""
    return AgentKey(ed25519.Ed25519PrivateKey.generate(), comment)


def load_private_key(data: bytes, passphrase: bytes | None = None, comment: str = "") -> AgentKey:
    """Load an OpenSSH or PEM private key (what ``keystead ssh import`` reads)."""
    openssh = data.lstrip().startswith(b"-----BEGIN OPENSSH PRIVATE KEY-----")
    loader = serialization.load_ssh_private_key if openssh else serialization.load_pem_private_key
    try:
        key = loader(data, passphrase)
    except TypeError as e:
        if passphrase is None:
            raise KeyPassphraseRequired("the private key is encrypted: give its passphrase") from e
        # A passphrase for an unencrypted key: load it without one.
        try:
            key = loader(data, None)
        except (TypeError, ValueError) as e2:
            raise FormatError("not a supported private key") from e2
    except (ValueError, UnsupportedAlgorithm) as e:
        raise FormatError("not a supported private key, or a wrong passphrase") from e
    if not isinstance(key, (ed25519.Ed25519PrivateKey, rsa.RSAPrivateKey)):
        raise FormatError("only Ed25519 and RSA keys are supported")
    return AgentKey(key, comment)


def load_private_key_file(path: str | Path, passphrase: bytes | None = None) -> AgentKey:
    """Load a key file; the comment comes from a ``.pub`` next to it, else the file name."""
    path = Path(path)
    key = load_private_key(path.read_bytes(), passphrase, path.name)
    pub_path = path.with_name(path.name + ".pub")
    try:
        pub = PublicKey.from_line(pub_path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, FormatError):
        return key
    if pub.blob == key.public_blob and pub.comment:
        return AgentKey(key.private, pub.comment)
    return key


def authorized_keys_line(key: PublicKey, options: tuple[str, ...] = ()) -> str:
    """One ``authorized_keys`` line (what ``AuthorizedKeysCommand`` prints).

    ``options`` are written as given (``restrict``, ``from="10.0.0.0/8"``);
    they must not contain spaces outside quotes, which sshd would misread.
    """
    for option in options:
        _check_text(option, "option")
        if not option or (" " in option.split('"', 1)[0]):
            raise ValueError(f"bad authorized_keys option {option!r}")
    prefix = ",".join(options)
    return f"{prefix} {key.line()}" if prefix else key.line()
