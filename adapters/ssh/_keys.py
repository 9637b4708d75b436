"""SSH keys the agent serves: the device's Ed25519 key and imported Ed25519/ECDSA/RSA keys.

Loading and serializing is left to ``cryptography`` (``_keyfile`` adds the
ciphers it lacks); this module only adds the SSH signature blob an agent
returns and the public-key line and fingerprint formats.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from keystead.core.errors import FormatError, KeysteadError

from . import _wire
from ._keyfile import KeyPassphraseRequired, UnsupportedKeyCipher, WrongPassphrase, read_private_key

__all__ = [
    "MAX_AGENT_KEYS",
    "MAX_IMPORTED_KEYS",
    "SIGN_FLAG_RSA_SHA2_256",
    "SIGN_FLAG_RSA_SHA2_512",
    "AgentKey",
    "KeyPassphraseRequired",
    "PublicKey",
    "UnsupportedKeyCipher",
    "UnsupportedSignRequest",
    "WrongPassphrase",
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

#: Keys one agent serves, the device key included. ``ssh`` offers an agent's keys one
#: after another and sshd (``MaxAuthTries``, default 6) disconnects after the sixth
#: refused one, so a seventh key would never be tried. ``ssh import`` refuses keys past
#: this, ``ssh keys`` and the published list show the same ones the agent serves.
MAX_AGENT_KEYS = 6
MAX_IMPORTED_KEYS = MAX_AGENT_KEYS - 1  # the device's own key always comes first

_PrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
_SUPPORTED = (ed25519.Ed25519PrivateKey, ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey)
_EC_CURVES: dict[str, tuple[str, hashes.HashAlgorithm]] = {
    "secp256r1": ("ecdsa-sha2-nistp256", hashes.SHA256()),
    "secp384r1": ("ecdsa-sha2-nistp384", hashes.SHA384()),
    "secp521r1": ("ecdsa-sha2-nistp521", hashes.SHA512()),
}


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
        except (ValueError, FormatError, UnsupportedAlgorithm, NotImplementedError) as e:
            # NotImplementedError: cryptography's answer to a compressed ECDSA point
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
        elif isinstance(self.private, ec.EllipticCurvePrivateKey):
            if self.private.curve.name not in _EC_CURVES:
                raise FormatError("ECDSA keys must be on nistp256, nistp384 or nistp521")
        elif not isinstance(self.private, ed25519.Ed25519PrivateKey):
            raise FormatError("only Ed25519, ECDSA and RSA keys are supported")
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
        Ed25519 and ECDSA ignore the RSA flags, as OpenSSH's agent does; ECDSA
        hashes with the curve's own hash (RFC 5656 section 6.2.1).
        """
        if flags & ~_KNOWN_FLAGS:
            raise UnsupportedSignRequest("unknown signature flags")
        if isinstance(self.private, ed25519.Ed25519PrivateKey):
            return _wire.string("ssh-ed25519") + _wire.string(self.private.sign(data))
        if isinstance(self.private, ec.EllipticCurvePrivateKey):
            algorithm, ec_hash = _EC_CURVES[self.private.curve.name]
            r, s = decode_dss_signature(self.private.sign(data, ec.ECDSA(ec_hash)))
            return _wire.string(algorithm) + _wire.string(_wire.mpint(r) + _wire.mpint(s))
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
    """Load an OpenSSH, PEM or PKCS#8 private key (what ``keystead ssh import`` reads).

    Raises ``KeyPassphraseRequired``, ``WrongPassphrase``, ``UnsupportedKeyCipher``
    or another ``FormatError`` (all one line for the person).
    """
    key = read_private_key(data, passphrase)
    if not isinstance(key, _SUPPORTED):
        raise FormatError("only Ed25519, ECDSA and RSA keys are supported")
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
