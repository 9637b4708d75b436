"""Agent keys: signatures OpenSSH accepts, key files ssh-keygen writes, public-key lines."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from keystead.adapters.ssh import _wire
from keystead.adapters.ssh._keys import (
    AgentKey,
    KeyPassphraseRequired,
    PublicKey,
    UnsupportedSignRequest,
    WrongPassphrase,
    authorized_keys_line,
    generate_device_key,
    load_private_key,
    load_private_key_file,
)
from keystead.adapters.ssh._verify import verify_signature
from keystead.core.errors import FormatError, InvalidSignature

RSA = AgentKey(rsa.generate_private_key(public_exponent=65537, key_size=2048), "rsa")


def ssh_keygen(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ssh-keygen", *args], capture_output=True, text=True, timeout=30)


def test_ed25519_signs_and_verifies() -> None:
    key = generate_device_key("me@device")
    sig = key.sign(b"data")
    r = _wire.Reader(sig)
    assert r.text() == "ssh-ed25519" and len(r.string()) == 64
    verify_signature(key.public_blob, sig, b"data")
    with pytest.raises(InvalidSignature):
        verify_signature(key.public_blob, sig, b"other")


@pytest.mark.parametrize(
    "flags, name", [(2, "rsa-sha2-256"), (4, "rsa-sha2-512"), (6, "rsa-sha2-256")]
)
def test_rsa_sha2_flags(flags: int, name: str) -> None:
    sig = RSA.sign(b"data", flags)
    assert _wire.Reader(sig).text() == name
    verify_signature(RSA.public_blob, sig, b"data")


@pytest.mark.parametrize("key, flags", [(RSA, 0), (RSA, 1), (generate_device_key(""), 8)])
def test_refused_sign_requests(key: AgentKey, flags: int) -> None:
    with pytest.raises(UnsupportedSignRequest):
        key.sign(b"data", flags)


def test_weak_and_unsupported_keys_are_refused() -> None:
    with pytest.raises(FormatError):
        AgentKey(rsa.generate_private_key(public_exponent=65537, key_size=1024))
    with pytest.raises(FormatError, match="nistp256"):
        AgentKey(ec.generate_private_key(ec.SECP224R1()))
    with pytest.raises(FormatError):
        AgentKey(dsa.generate_private_key(2048))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "curve, name, digest",
    [
        (ec.SECP256R1(), "ecdsa-sha2-nistp256", hashes.SHA256()),
        (ec.SECP384R1(), "ecdsa-sha2-nistp384", hashes.SHA384()),
        (ec.SECP521R1(), "ecdsa-sha2-nistp521", hashes.SHA512()),
    ],
)
def test_ecdsa_signs_with_the_curve_hash(
    curve: ec.EllipticCurve, name: str, digest: hashes.HashAlgorithm
) -> None:
    key = AgentKey(ec.generate_private_key(curve), "ec")
    assert key.public.algorithm == name
    for flags in (0, 2, 4):  # RSA flags mean nothing to ECDSA, as in OpenSSH's agent
        sig = key.sign(b"data", flags)
        verify_signature(key.public_blob, sig, b"data")
    r = _wire.Reader(sig)
    assert r.text() == name
    inner = _wire.Reader(r.string())
    rs = (inner.mpint(), inner.mpint())
    inner.end()
    public = key.private.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    public.verify(encode_dss_signature(*rs), b"data", ec.ECDSA(digest))  # that hash, no other
    with pytest.raises(InvalidSignature):
        verify_signature(key.public_blob, sig, b"other")


@pytest.mark.parametrize("key_type", ["ed25519", "rsa", "ecdsa"])
def test_load_what_ssh_keygen_writes(tmp_path: Path, key_type: str) -> None:
    path = tmp_path / f"id_{key_type}"
    assert (
        ssh_keygen("-q", "-t", key_type, "-N", "", "-C", "me@laptop", "-f", str(path)).returncode
        == 0
    )
    key = load_private_key_file(path)
    assert key.comment == "me@laptop"  # taken from the .pub file
    assert key.public.line() == path.with_name(path.name + ".pub").read_text().strip()
    fingerprint = ssh_keygen("-l", "-f", str(path)).stdout.split()[1]
    assert key.public.fingerprint == fingerprint


def test_encrypted_key_file(tmp_path: Path) -> None:
    path = tmp_path / "id_ed25519"
    ssh_keygen("-q", "-t", "ed25519", "-N", "secret", "-f", str(path))
    path.with_name("id_ed25519.pub").unlink()
    with pytest.raises(KeyPassphraseRequired):
        load_private_key_file(path)
    with pytest.raises(WrongPassphrase):
        load_private_key_file(path, b"wrong")
    key = load_private_key_file(path, b"secret")
    assert key.comment == "id_ed25519"


def test_pem_rsa_and_garbage(tmp_path: Path) -> None:
    path = tmp_path / "legacy"
    ssh_keygen("-q", "-t", "rsa", "-b", "2048", "-m", "PEM", "-N", "", "-f", str(path))
    assert path.read_bytes().startswith(b"-----BEGIN RSA PRIVATE KEY-----")
    assert load_private_key_file(path).public.algorithm == "ssh-rsa"
    with pytest.raises(FormatError):
        load_private_key(b"not a key")
    dsa_file = tmp_path / "dsa"
    dsa_file.write_bytes(
        dsa.generate_private_key(2048).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    with pytest.raises(FormatError, match="Ed25519, ECDSA and RSA"):
        load_private_key_file(dsa_file)


@pytest.mark.parametrize(
    "key",
    [generate_device_key("dev"), AgentKey(ec.generate_private_key(ec.SECP521R1()), "ec")],
)
def test_private_openssh_round_trip_and_ssh_keygen_reads_it(tmp_path: Path, key: AgentKey) -> None:
    assert load_private_key(key.private_openssh(b"pw"), b"pw") == key
    path = tmp_path / "exported"
    path.write_bytes(key.private_openssh())
    path.chmod(0o600)
    assert ssh_keygen("-y", "-f", str(path)).stdout.split()[:2] == key.public.line().split()[:2]


def test_public_key_lines() -> None:
    key = generate_device_key("a comment")
    parsed = PublicKey.from_line(key.public.line())
    assert parsed == key.public and parsed.comment == "a comment"
    algo, b64 = key.public.line().split()[:2]
    for bad in ["", algo, f"ssh-rsa {b64}", f"{algo} {b64}!", f"{algo} AAAA"]:
        with pytest.raises(FormatError):
            PublicKey.from_line(bad)


def test_authorized_keys_line() -> None:
    key = generate_device_key("dev")
    assert authorized_keys_line(key.public) == key.public.line()
    line = authorized_keys_line(key.public, ("restrict", 'from="10.0.0.0/8"'))
    assert line == f'restrict,from="10.0.0.0/8" {key.public.line()}'
    for bad in ["", "no pty", "x\nssh-ed25519 AAAA"]:
        with pytest.raises(ValueError):
            authorized_keys_line(key.public, (bad,))
    with pytest.raises(ValueError):
        generate_device_key("two\nlines")


def test_verify_host_signatures_of_other_types() -> None:
    # ECDSA host keys sign session-bind proofs; check against OpenSSH-format encoding.
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    private = ec.generate_private_key(ec.SECP256R1())
    line = private.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    blob = PublicKey.from_line(line.decode()).blob
    r, s = decode_dss_signature(private.sign(b"sid", ec.ECDSA(hashes.SHA256())))
    sig = _wire.string("ecdsa-sha2-nistp256") + _wire.string(_wire.mpint(r) + _wire.mpint(s))
    verify_signature(blob, sig, b"sid")
    with pytest.raises(InvalidSignature):
        verify_signature(blob, sig + b"x", b"sid")
    with pytest.raises(InvalidSignature):
        verify_signature(RSA.public_blob, _wire.string("ssh-rsa") + _wire.string(b"x"), b"sid")


COMPRESSED_EC = (
    _wire.string("ecdsa-sha2-nistp256")
    + _wire.string("nistp256")
    + _wire.string(b"\x02" + b"\x11" * 32)
)


def test_compressed_ecdsa_points_are_format_errors_not_crashes() -> None:
    """cryptography raises NotImplementedError for them; callers see our own errors."""
    with pytest.raises(FormatError):
        PublicKey(COMPRESSED_EC)
    with pytest.raises(InvalidSignature):
        verify_signature(COMPRESSED_EC, _wire.string("ecdsa-sha2-nistp256") + _wire.string(b""),
                         b"x")  # fmt: skip
