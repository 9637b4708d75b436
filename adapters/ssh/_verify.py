"""Verify SSH signature blobs: the host's proof in ``session-bind@openssh.com``.

The agent shows the host key to the person confirming a signature, so it must
know the host really holds that key; OpenSSH's agent checks the same proof.
"""

from __future__ import annotations

import base64

from cryptography.exceptions import InvalidSignature as _CryptoInvalidSignature
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from keystead.core.errors import FormatError, InvalidSignature

from . import _wire

__all__ = ["verify_signature"]

_RSA_HASHES: dict[str, hashes.HashAlgorithm] = {
    "rsa-sha2-256": hashes.SHA256(),
    "rsa-sha2-512": hashes.SHA512(),
}
_EC_HASHES: dict[str, hashes.HashAlgorithm] = {
    "ecdsa-sha2-nistp256": hashes.SHA256(),
    "ecdsa-sha2-nistp384": hashes.SHA384(),
    "ecdsa-sha2-nistp521": hashes.SHA512(),
}


def verify_signature(public_blob: bytes, signature_blob: bytes, data: bytes) -> None:
    """Raise ``InvalidSignature`` unless ``signature_blob`` signs ``data`` with the key.

    Supports Ed25519, ECDSA (NIST curves) and RSA with SHA-2; SHA-1 ``ssh-rsa``
    and every parse failure count as invalid.
    """
    try:
        key_type = _wire.Reader(public_blob).text()
        key = serialization.load_ssh_public_key(
            key_type.encode() + b" " + base64.b64encode(public_blob)
        )
        sig = _wire.Reader(signature_blob)
        sig_type = sig.text()
        raw = sig.string()
        sig.end()
        if isinstance(key, ed25519.Ed25519PublicKey) and sig_type == "ssh-ed25519":
            key.verify(raw, data)
        elif isinstance(key, rsa.RSAPublicKey) and sig_type in _RSA_HASHES:
            key.verify(raw, data, padding.PKCS1v15(), _RSA_HASHES[sig_type])
        elif isinstance(key, ec.EllipticCurvePublicKey) and sig_type == key_type:
            inner = _wire.Reader(raw)
            r, s = inner.mpint(), inner.mpint()
            inner.end()
            key.verify(encode_dss_signature(r, s), data, ec.ECDSA(_EC_HASHES[sig_type]))
        else:
            raise InvalidSignature()
    except (FormatError, ValueError, KeyError, UnsupportedAlgorithm, NotImplementedError) as e:
        raise InvalidSignature() from e
    except _CryptoInvalidSignature as e:
        raise InvalidSignature() from e
