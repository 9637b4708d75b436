"""HTTPS for ``keystead serve``: a certificate given as files, or a self-signed one kept in
the service's data folder (docs/PHONE.md §5).

Phones run service workers, WebCrypto and Web Push only on HTTPS pages, so a trial on a
home network needs a certificate. The self-signed one is made once and reused while it
names the same hosts and has 30 days left, so a phone that was told to trust it keeps
trusting it across restarts. It is its own CA (``CA:TRUE``), which is what Android and iOS
accept as an installed certificate.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from ..errors import FormatError, StorageError

__all__ = ["TlsFiles", "check_tls_files", "default_names", "lan_address", "self_signed"]

VALID_DAYS = 397  # what browsers accept for a leaf; iOS also wants <= 825
RENEW_DAYS = 30


@dataclass(frozen=True)
class TlsFiles:
    cert: Path
    key: Path
    fingerprint: str
    """SHA-256 of the certificate (DER), colon-separated upper-case hex, as browsers show."""
    names: tuple[str, ...] = ()
    created: bool = False


def _fingerprint(cert: object) -> str:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    assert isinstance(cert, x509.Certificate)
    return ":".join(f"{b:02X}" for b in cert.fingerprint(hashes.SHA256()))


def check_tls_files(cert_path: str | Path, key_path: str | Path) -> TlsFiles:
    """The certificate and key, checked: readable, PEM, unencrypted, and of one pair."""
    from cryptography import x509
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization

    cert_file, key_file = Path(cert_path), Path(key_path)
    try:
        cert_pem, key_pem = cert_file.read_bytes(), key_file.read_bytes()
    except OSError as e:
        raise StorageError(f"cannot read the TLS file {e.filename}: {e.strerror}") from None
    try:
        certs = x509.load_pem_x509_certificates(cert_pem)
    except ValueError:
        raise FormatError(f"{cert_file} is not a PEM certificate") from None
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except TypeError:
        raise FormatError(f"{key_file} is encrypted; give an unencrypted key") from None
    except (ValueError, UnsupportedAlgorithm):
        raise FormatError(f"{key_file} is not a PEM private key") from None
    pub = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(*pub) != certs[0].public_key().public_bytes(*pub):
        raise FormatError(f"the key {key_file} does not belong to the certificate {cert_file}")
    return TlsFiles(cert_file, key_file, _fingerprint(certs[0]), _names(certs[0]))


def _names(cert: object) -> tuple[str, ...]:
    from cryptography import x509

    assert isinstance(cert, x509.Certificate)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return ()
    dns = [str(n) for n in san.get_values_for_type(x509.DNSName)]
    ips = [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    return tuple(dns + ips)


def lan_address() -> str | None:
    """This machine's address on its outgoing network (no packet is sent), or None."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))  # TEST-NET-1: only picks the route
            addr = str(s.getsockname()[0])
    except OSError:
        return None
    return None if addr.startswith("127.") or addr == "0.0.0.0" else addr


def default_names(host: str) -> list[str]:
    """The names a phone may use, the one to show first: the bound address when it is a
    specific one, else this machine's LAN address; then loopback."""
    names: list[str] = []
    if host not in ("0.0.0.0", "::", ""):
        names.append(host)
    else:
        lan = lan_address()
        if lan:
            names.append(lan)
    names += ["localhost", "127.0.0.1", "::1"]
    return list(dict.fromkeys(names))


def _canonical(name: str) -> str:
    name = name.strip().lower().strip("[]")
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        pass
    label = name.rstrip(".")
    ok = (
        label
        and len(label) <= 253
        and all(
            part and len(part) <= 63 and all(c.isalnum() or c == "-" for c in part)
            for part in label.removeprefix("*.").split(".")
        )
    )
    if not ok:
        raise FormatError(f"--tls-name {name!r} is not a host name or IP address")
    return label


def self_signed(
    folder: Path, names: list[str], *, now: datetime.datetime | None = None
) -> TlsFiles:
    """The self-signed certificate in ``folder`` for ``names``: reused when it names them
    all and is valid for 30 more days, else made anew (key and certificate, mode 0600)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    wanted = list(dict.fromkeys(_canonical(n) for n in names))
    if not wanted:
        raise FormatError("a self-signed certificate needs at least one host name")
    now = now or datetime.datetime.now(datetime.UTC)
    cert_file, key_file = folder / "self-signed.pem", folder / "self-signed.key"
    if cert_file.exists() and key_file.exists():
        try:
            found = check_tls_files(cert_file, key_file)
            cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
            fresh = cert.not_valid_after_utc - now > datetime.timedelta(days=RENEW_DAYS)
            if fresh and set(wanted) <= set(found.names):
                return found
        except (FormatError, StorageError, ValueError):
            pass  # damaged: made again below
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as e:
        raise StorageError(f"cannot create {folder}: {e.strerror}") from None
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"Keystead {wanted[0]}")])
    alt: list[x509.GeneralName] = []
    for n in wanted:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            alt.append(x509.DNSName(n))
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _write_private(key_file, key_pem)
    _write_private(cert_file, cert.public_bytes(serialization.Encoding.PEM))
    return TlsFiles(cert_file, key_file, _fingerprint(cert), tuple(wanted), created=True)


def _write_private(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError as e:
        raise StorageError(f"cannot write {path}: {e.strerror}") from None
