"""Key files as the real ssh-keygen (and openssl) write them now: every cipher, every form.

Each file is made at test time by the real tool with a passphrase; the key we load must
have the public half ssh-keygen itself derives, a wrong passphrase must be
``WrongPassphrase`` and a cipher we cannot read ``UnsupportedKeyCipher``.
"""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st
from keystead.adapters.ssh import _wire
from keystead.adapters.ssh._keys import (
    AgentKey,
    KeyPassphraseRequired,
    UnsupportedKeyCipher,
    WrongPassphrase,
    generate_device_key,
    load_private_key,
    load_private_key_file,
)
from keystead.core.errors import FormatError

PASS = "correct horse"
SSH_CIPHERS = subprocess.run(
    ["ssh", "-Q", "cipher"], capture_output=True, text=True, check=True
).stdout.split()


def run(*argv: str) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def keygen(path: Path, key_type: str, bits: str | None, *extra: str) -> str:
    """Write a key with ssh-keygen; return the public line ssh-keygen derives from it."""
    size = ["-b", bits] if bits else []
    run("ssh-keygen", "-q", "-t", key_type, *size, "-N", PASS, "-C", "c", "-a", "2", *extra,
        "-f", str(path))  # fmt: skip
    return " ".join(path.with_name(path.name + ".pub").read_text().split()[:2])


def check(path: Path, public: str) -> None:
    path.with_name(path.name + ".pub").unlink(missing_ok=True)  # the key, not its .pub, speaks
    key = load_private_key_file(path, PASS.encode())
    assert " ".join(key.public.line().split()[:2]) == public
    with pytest.raises(WrongPassphrase, match="^wrong passphrase"):
        load_private_key_file(path, b"not the passphrase")
    with pytest.raises(KeyPassphraseRequired):
        load_private_key_file(path)


def test_ssh_offers_the_ciphers_we_test() -> None:
    assert "chacha20-poly1305@openssh.com" in SSH_CIPHERS and "aes256-ctr" in SSH_CIPHERS


@pytest.mark.parametrize("cipher", SSH_CIPHERS)
def test_every_openssh_cipher_ssh_keygen_writes(tmp_path: Path, cipher: str) -> None:
    path = tmp_path / "id"
    public = keygen(path, "ecdsa", "384", "-Z", cipher)
    assert base64.b64decode(b"".join(path.read_bytes().splitlines()[1:-1]))[15:].startswith(
        _wire.string(cipher)
    )  # the file really is written with that cipher
    check(path, public)


@pytest.mark.parametrize(
    "key_type, bits, form",
    [
        (key_type, bits, form)
        for key_type, bits in [
            ("ecdsa", "256"),
            ("ecdsa", "384"),
            ("ecdsa", "521"),
            ("ed25519", None),
            ("rsa", "2048"),
        ]
        for form in ["OpenSSH", "PEM", "PKCS8"]
        # OpenSSH has no legacy PEM form for Ed25519 (it writes OpenSSH instead)
        if not (key_type == "ed25519" and form == "PEM")
    ],
)
def test_every_key_type_in_every_form(
    tmp_path: Path, key_type: str, bits: str | None, form: str
) -> None:
    path = tmp_path / "id"
    fmt = ["-m", form] if form != "OpenSSH" else []  # ssh-keygen's default form
    public = keygen(path, key_type, bits, *fmt)
    head = path.read_bytes().splitlines()[0]
    if form == "PKCS8" and key_type != "ed25519":
        assert head == b"-----BEGIN ENCRYPTED PRIVATE KEY-----"
    if form == "PEM":
        assert b"ENCRYPTED" in path.read_bytes().splitlines()[1]
    check(path, public)
    unencrypted = tmp_path / "plain"
    public = keygen(unencrypted, key_type, bits, *fmt, "-N", "")
    key = load_private_key_file(unencrypted, b"ignored for an unencrypted key")
    assert " ".join(key.public.line().split()[:2]) == public


@pytest.mark.parametrize(
    "cipher", ["aes-128-cbc", "aes-192-cbc", "aes-256-cbc", "aes-128-ctr", "aes-192-ctr",
               "aes-256-ctr", "des-ede3-cbc"],
)  # fmt: skip
@pytest.mark.parametrize("key_type, bits", [("ecdsa", "256"), ("rsa", "2048")])
def test_legacy_pem_ciphers_ssh_keygen_reads(
    tmp_path: Path, cipher: str, key_type: str, bits: str
) -> None:
    plain = tmp_path / "plain"
    public = keygen(plain, key_type, bits, "-m", "PEM", "-N", "")
    tool = "ec" if key_type == "ecdsa" else "rsa"
    path = tmp_path / "legacy"
    run("openssl", tool, "-in", str(plain), f"-{cipher}", "-passout", f"pass:{PASS}",
        "-out", str(path), *(["-traditional"] if tool == "rsa" else []))  # fmt: skip
    assert f"DEK-Info: {cipher.upper()}," in path.read_text()
    path.chmod(0o600)
    assert run("ssh-keygen", "-y", "-P", PASS, "-f", str(path)).split()[:2] == public.split()
    check(path, public)


def test_unsupported_ciphers_are_named_not_called_a_wrong_passphrase(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    keygen(plain, "ecdsa", "256", "-m", "PEM", "-N", "")
    camellia = tmp_path / "camellia"
    run("openssl", "ec", "-in", str(plain), "-camellia256", "-passout", f"pass:{PASS}",
        "-out", str(camellia))  # fmt: skip
    with pytest.raises(UnsupportedKeyCipher, match="CAMELLIA-256-CBC"):
        load_private_key_file(camellia, PASS.encode())

    # An OpenSSH file naming a cipher nobody writes any more.
    path = tmp_path / "id"
    keygen(path, "ed25519", None)
    lines = path.read_bytes().splitlines()
    blob = base64.b64decode(b"".join(lines[1:-1]))
    r = _wire.Reader(blob[15:])
    r.text()
    renamed = blob[:15] + _wire.string("blowfish-cbc") + r.rest()
    text = lines[0] + b"\n" + base64.encodebytes(renamed) + lines[-1] + b"\n"
    with pytest.raises(UnsupportedKeyCipher, match="blowfish-cbc"):
        load_private_key(text, PASS.encode())


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not a key",
        b"-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n",
        b"-----BEGIN OPENSSH PRIVATE KEY-----\n!!!!\n-----END OPENSSH PRIVATE KEY-----\n",
        b"-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n",
        b"-----BEGIN EC PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-256-CTR,00\n\n"
        b"AAAA\n-----END EC PRIVATE KEY-----\n",
    ],
)
def test_garbage_is_a_format_error(data: bytes) -> None:
    with pytest.raises(FormatError):
        load_private_key(data, b"pw")


def test_truncated_openssh_files_never_escape_as_other_errors(tmp_path: Path) -> None:
    path = tmp_path / "id"
    keygen(path, "ecdsa", "256", "-Z", "chacha20-poly1305@openssh.com")
    lines = path.read_bytes().splitlines()
    blob = base64.b64decode(b"".join(lines[1:-1]))
    for cut in range(0, len(blob), 7):
        text = lines[0] + b"\n" + base64.encodebytes(blob[:cut]) + lines[-1] + b"\n"
        with pytest.raises(FormatError):
            load_private_key(text, PASS.encode())


_ED = generate_device_key("fuzz")
_EC = AgentKey(ec.generate_private_key(ec.SECP384R1()), "fuzz")


@settings(max_examples=150, deadline=None)
@given(
    which=st.sampled_from(["ed-openssh", "ec-openssh", "ec-pem", "ec-pkcs8"]),
    position=st.integers(min_value=0),
    value=st.integers(min_value=0, max_value=255),
)
def test_damaged_files_are_format_errors_only(which: str, position: int, value: int) -> None:
    """Any byte of a key file changed: the key loads or it is a FormatError, nothing else."""
    key = _ED if which == "ed-openssh" else _EC
    if which.endswith("openssh"):
        text = key.private_openssh()
    else:
        fmt = (
            serialization.PrivateFormat.TraditionalOpenSSL
            if which == "ec-pem"
            else serialization.PrivateFormat.PKCS8
        )
        text = key.private.private_bytes(
            serialization.Encoding.PEM, fmt, serialization.NoEncryption()
        )
    lines = text.splitlines()
    blob = bytearray(base64.b64decode(b"".join(lines[1:-1])))
    blob[position % len(blob)] = value
    damaged = lines[0] + b"\n" + base64.encodebytes(bytes(blob)) + lines[-1] + b"\n"
    try:
        load_private_key(damaged)
    except FormatError:
        pass


def test_key_derivation_rounds_are_bounded(tmp_path: Path) -> None:
    from keystead.adapters.ssh._keyfile import MAX_KDF_ROUNDS

    path = tmp_path / "id"
    keygen(path, "ed25519", None)  # -a 2
    lines = path.read_bytes().splitlines()
    blob = base64.b64decode(b"".join(lines[1:-1]))
    count = (2).to_bytes(4, "big")
    for rounds in (MAX_KDF_ROUNDS + 1, 2**32 - 1):
        where = blob.index(count, 15)  # the rounds follow the salt in the kdf options
        forged = blob[:where] + rounds.to_bytes(4, "big") + blob[where + 4 :]
        text = lines[0] + b"\n" + base64.encodebytes(forged) + lines[-1] + b"\n"
        with pytest.raises(FormatError, match=f"asks for {rounds} key derivation rounds"):
            load_private_key(text, PASS.encode())
