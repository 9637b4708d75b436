"""Read private key files as ssh-keygen writes them: OpenSSH, legacy PEM and PKCS#8.

Parsing is ``cryptography``'s (``load_ssh_private_key``, ``load_pem_private_key``).
This module adds only the ciphers it lacks and that ``ssh-keygen`` writes or reads:

- OpenSSH ``-Z``: aes128/192-ctr, aes128/192-cbc, 3des-cbc, aes128-gcm@openssh.com and
  chacha20-poly1305@openssh.com (``cryptography`` has aes256-ctr/-cbc/-gcm only). The
  private section is decrypted here and handed back to ``cryptography`` unencrypted.
- legacy PEM (``Proc-Type: 4,ENCRYPTED``) with AES-128/192/256-CTR and AES-192-CBC,
  which OpenSSL (and so ssh-keygen) reads: decrypted here, parsed by ``cryptography``.

A wrong passphrase is ``WrongPassphrase`` and a cipher we cannot read is
``UnsupportedKeyCipher`` (naming it): two different things for the person to do.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re

import bcrypt
from cryptography.exceptions import InvalidSignature, InvalidTag, UnsupportedAlgorithm
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import poly1305, serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from keystead.core.errors import FormatError

from . import _wire

__all__ = [
    "MAX_KDF_ROUNDS",
    "KeyPassphraseRequired",
    "UnsupportedKeyCipher",
    "WrongPassphrase",
    "read_private_key",
]

_OPENSSH_BEGIN = b"-----BEGIN OPENSSH PRIVATE KEY-----"
_OPENSSH_END = b"-----END OPENSSH PRIVATE KEY-----"
_OPENSSH_MAGIC = b"openssh-key-v1\x00"
# ssh-keygen writes 16 rounds unless -a says more; each takes ~20 ms here. A file asking
# for more than this (over 20 s, or days for a damaged count) is refused, naming the count.
MAX_KDF_ROUNDS = 1024
_MAX_FILE = 64 * 1024

# name -> (key length, iv length, kind); cryptography reads the aes256 ones itself.
_OPENSSH_OWN: dict[str, tuple[int, int, str]] = {
    "aes128-ctr": (16, 16, "aes-ctr"),
    "aes192-ctr": (24, 16, "aes-ctr"),
    "aes128-cbc": (16, 16, "aes-cbc"),
    "aes192-cbc": (24, 16, "aes-cbc"),
    "3des-cbc": (24, 8, "3des-cbc"),
    "aes128-gcm@openssh.com": (16, 12, "gcm"),
    "chacha20-poly1305@openssh.com": (64, 0, "chachapoly"),
}
_OPENSSH_CRYPTOGRAPHY = {"aes256-ctr", "aes256-cbc", "aes256-gcm@openssh.com"}

# legacy PEM DEK-Info names -> (key length, mode); cryptography reads the others below.
_PEM_OWN: dict[str, tuple[int, str]] = {
    "AES-128-CTR": (16, "ctr"),
    "AES-192-CTR": (24, "ctr"),
    "AES-256-CTR": (32, "ctr"),
    "AES-192-CBC": (24, "cbc"),
}
_PEM_CRYPTOGRAPHY = {"AES-128-CBC", "AES-256-CBC", "DES-EDE3-CBC"}
_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----\r?\n(.*?)-----END \1-----", re.DOTALL)


class KeyPassphraseRequired(FormatError):
    """The private key file is encrypted and no passphrase was given."""


class WrongPassphrase(FormatError):
    """The passphrase does not open the key file (or the file is damaged)."""

    def __init__(self) -> None:
        super().__init__("wrong passphrase for the private key")


class UnsupportedKeyCipher(FormatError):
    """The key file is encrypted with a cipher Keystead cannot read."""

    def __init__(self, name: str) -> None:
        super().__init__(f"the private key is encrypted with {name!r}, which is not supported")


def read_private_key(data: bytes, passphrase: bytes | None = None) -> PrivateKeyTypes:
    """Load a private key from an OpenSSH, PEM or PKCS#8 file's bytes.

    A passphrase given for an unencrypted file is ignored, as ssh-keygen does.
    """
    if len(data) > _MAX_FILE:
        raise FormatError("the private key file is too large")
    text = data.strip()
    if text.startswith(_OPENSSH_BEGIN):
        return _read_openssh(text, passphrase)
    if text.startswith(b"-----BEGIN "):
        return _read_pem(text, passphrase)
    raise FormatError("not a private key file (OpenSSH, PEM or PKCS#8)")


# --------------------------------------------------------------------------- OpenSSH
def _read_openssh(text: bytes, passphrase: bytes | None) -> PrivateKeyTypes:
    if not text.endswith(_OPENSSH_END):
        raise FormatError("the OpenSSH private key is truncated")
    body = text[len(_OPENSSH_BEGIN) : -len(_OPENSSH_END)]
    try:
        blob = base64.b64decode(b"".join(body.split()), validate=True)
    except binascii.Error as e:
        raise FormatError("the OpenSSH private key is not valid base64") from e
    if not blob.startswith(_OPENSSH_MAGIC):
        raise FormatError("not an OpenSSH private key")
    r = _wire.Reader(blob[len(_OPENSSH_MAGIC) :])
    cipher, kdf, kdf_options = r.text(), r.text(), r.string()
    if r.uint32() != 1:
        raise FormatError("an OpenSSH key file must hold exactly one key")
    public, encrypted = r.string(), r.string()
    if cipher == "none":
        return _load_ssh(text, None)
    if passphrase is None:
        raise KeyPassphraseRequired("the private key is encrypted: give its passphrase")
    if kdf != "bcrypt":
        raise FormatError(f"unsupported key derivation {kdf!r} in the OpenSSH key file")
    if cipher not in _OPENSSH_OWN and cipher not in _OPENSSH_CRYPTOGRAPHY:
        raise UnsupportedKeyCipher(cipher)
    k = _wire.Reader(kdf_options)
    salt, rounds = k.string(), k.uint32()
    k.end()
    if not salt or rounds < 1:
        raise FormatError("bad key derivation options in the OpenSSH key file")
    if rounds > MAX_KDF_ROUNDS:
        raise FormatError(
            f"the key file asks for {rounds} key derivation rounds; at most {MAX_KDF_ROUNDS} "
            "are read (re-encrypt it with 'ssh-keygen -p -a 100 -f FILE')"
        )
    if cipher in _OPENSSH_CRYPTOGRAPHY:
        return _load_ssh(text, passphrase)
    key_len, iv_len, kind = _OPENSSH_OWN[cipher]
    material = bcrypt.kdf(passphrase, salt, key_len + iv_len, rounds, ignore_few_rounds=True)
    key, iv = material[:key_len], material[key_len:]
    tag = r.rest()
    plain = _decrypt_openssh(kind, key, iv, encrypted, tag)
    if len(plain) < 8 or plain[:4] != plain[4:8]:
        raise WrongPassphrase()  # the two check integers differ: wrong key
    clear = (
        _OPENSSH_MAGIC
        + _wire.string("none")
        + _wire.string("none")
        + _wire.string(b"")
        + _wire.uint32(1)
        + _wire.string(public)
        + _wire.string(plain)
    )
    armored = _OPENSSH_BEGIN + b"\n" + base64.encodebytes(clear) + _OPENSSH_END + b"\n"
    return _load_ssh(armored, None)


def _decrypt_openssh(kind: str, key: bytes, iv: bytes, data: bytes, tag: bytes) -> bytes:
    aead = kind in ("gcm", "chachapoly")
    if len(tag) != (16 if aead else 0):
        raise FormatError("the OpenSSH private key has trailing bytes")
    if kind == "gcm":
        try:
            return AESGCM(key).decrypt(iv, data + tag, None)
        except InvalidTag as e:
            raise WrongPassphrase() from e
    if kind == "chachapoly":
        return _chachapoly_open(key, data, tag)
    block = 8 if kind == "3des-cbc" else 16
    if len(data) % block:
        raise FormatError("the OpenSSH private key is not a whole number of cipher blocks")
    if kind == "aes-ctr":
        dec = Cipher(algorithms.AES(key), modes.CTR(iv)).decryptor()
    elif kind == "aes-cbc":
        dec = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    else:
        dec = Cipher(TripleDES(key), modes.CBC(iv)).decryptor()
    return dec.update(data) + dec.finalize()


def _chachapoly_open(key: bytes, data: bytes, tag: bytes) -> bytes:
    """OpenSSH's chacha20-poly1305 with sequence number 0 and no length header.

    The main ChaCha20 key is the first 32 bytes; block 0 of its stream is the
    Poly1305 key, the payload is encrypted from block 1 (PROTOCOL.chacha20poly1305).
    """
    main = key[:32]
    nonce0 = bytes(16)  # 64-bit block counter 0 (little-endian), then the 64-bit sequence 0
    poly_key = Cipher(algorithms.ChaCha20(main, nonce0), None).encryptor().update(bytes(32))
    try:
        poly1305.Poly1305.verify_tag(poly_key, data, tag)
    except InvalidSignature as e:
        raise WrongPassphrase() from e
    nonce1 = (1).to_bytes(8, "little") + bytes(8)
    return Cipher(algorithms.ChaCha20(main, nonce1), None).decryptor().update(data)


def _load_ssh(data: bytes, passphrase: bytes | None) -> PrivateKeyTypes:
    try:
        return serialization.load_ssh_private_key(data, passphrase)
    except InvalidTag as e:
        raise WrongPassphrase() from e
    except (UnsupportedAlgorithm, NotImplementedError) as e:  # e.g. a compressed EC point
        raise FormatError(f"unsupported OpenSSH private key: {e}") from e
    except ValueError as e:
        if passphrase is not None:
            raise WrongPassphrase() from e
        raise FormatError("not a valid OpenSSH private key") from e


# ------------------------------------------------------------------------------ PEM
def _read_pem(text: bytes, passphrase: bytes | None) -> PrivateKeyTypes:
    match = _PEM_BLOCK.match(text)
    if match is None:
        raise FormatError("not a PEM private key")
    label, inner = match.group(1), match.group(2)
    lines = inner.decode("ascii", "replace").splitlines()
    fields: dict[str, str] = {}
    while lines and ":" in lines[0]:  # RFC 1421 headers: Proc-Type, DEK-Info
        key, _, value = lines.pop(0).partition(":")
        fields[key.strip()] = value.strip()
    b64 = "".join(lines)
    encrypted = label == b"ENCRYPTED PRIVATE KEY" or fields.get("Proc-Type") == "4,ENCRYPTED"
    if not encrypted:
        return _load_pem(text, None)
    if passphrase is None:
        raise KeyPassphraseRequired("the private key is encrypted: give its passphrase")
    if label == b"ENCRYPTED PRIVATE KEY":
        return _load_pem(text, passphrase)  # PKCS#8: PBES2, all cryptography's
    name, _, iv_hex = fields.get("DEK-Info", "").partition(",")
    name = name.strip().upper()
    if name in _PEM_CRYPTOGRAPHY:
        return _load_pem(text, passphrase)
    if name not in _PEM_OWN:
        raise UnsupportedKeyCipher(name or "an unnamed cipher")
    try:
        iv = bytes.fromhex(iv_hex.strip())
        raw = base64.b64decode(b64, validate=True)
    except (ValueError, binascii.Error) as e:
        raise FormatError("the PEM private key is malformed") from e
    key_len, mode = _PEM_OWN[name]
    if len(iv) != 16:
        raise FormatError("the PEM private key has a bad DEK-Info")
    der = _pem_decrypt(mode, _evp_bytes_to_key(passphrase, iv[:8], key_len), iv, raw)
    pem = b"-----BEGIN %s-----\n%s-----END %s-----\n" % (label, base64.encodebytes(der), label)
    try:
        return serialization.load_pem_private_key(pem, None)
    except (ValueError, UnsupportedAlgorithm, NotImplementedError) as e:
        raise WrongPassphrase() from e  # decrypted to garbage: CTR has no padding to check


def _evp_bytes_to_key(passphrase: bytes, salt: bytes, size: int) -> bytes:
    """OpenSSL's legacy PEM key derivation: MD5, one round (what every PEM reader does)."""
    out, block = b"", b""
    while len(out) < size:
        block = hashlib.md5(block + passphrase + salt, usedforsecurity=False).digest()
        out += block
    return out[:size]


def _pem_decrypt(mode: str, key: bytes, iv: bytes, data: bytes) -> bytes:
    if mode == "ctr":
        dec = Cipher(algorithms.AES(key), modes.CTR(iv)).decryptor()
        return dec.update(data) + dec.finalize()
    if not data or len(data) % 16:
        raise FormatError("the PEM private key is not a whole number of cipher blocks")
    dec = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    padded = dec.update(data) + dec.finalize()
    pad = padded[-1]
    if not 1 <= pad <= 16 or padded[-pad:] != bytes([pad]) * pad:
        raise WrongPassphrase()
    return padded[:-pad]


def _load_pem(data: bytes, passphrase: bytes | None) -> PrivateKeyTypes:
    try:
        return serialization.load_pem_private_key(data, passphrase)
    except UnsupportedAlgorithm as e:
        raise UnsupportedKeyCipher(str(e) or "an unknown cipher") from e
    except NotImplementedError as e:
        raise FormatError("unsupported PEM private key") from e
    except ValueError as e:
        if passphrase is not None:
            raise WrongPassphrase() from e
        raise FormatError("not a valid PEM private key") from e
