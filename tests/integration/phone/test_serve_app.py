"""The phone app's files at /app/ from a real ``keystead serve`` (docs/PHONE.md §2, §5): the
headers a phone relies on, HTTPS or loopback only, and the TLS options."""

from __future__ import annotations

import hashlib
import os
import re
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from keystead.core.qr import render_qr
from keystead.core.service.tls import lan_address
from keystead.core.testing import ServiceProcess, database_url

FILES = {
    "index.html": b"<!doctype html><title>Keystead</title><script src=./app.3f9a1c2e7b.js>",
    "app.3f9a1c2e7b.js": b"console.log('app')",
    "sw.js": b"self.addEventListener('push', () => {})",
    "manifest.webmanifest": b'{"name": "Keystead", "start_url": "/app/"}',
    "umbral.dab25a0d54.wasm": b"\x00asm\x01\x00\x00\x00",
    "app.4c69be64d4.css": b"body{}",
    "icons/icon-192.png": b"\x89PNG\r\n\x1a\nfake",
    ".hidden": b"secret",
}


def make_app(folder: Path) -> Path:
    for name, body in FILES.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(body)
    return folder


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    """Plain http, listening on every address (so it can be reached off loopback)."""
    work = tmp_path_factory.mktemp("app-plain")
    app = make_app(work / "app")
    (work / "outside.txt").write_text("not part of the app")
    svc = ServiceProcess(
        database_url(work), work, env={"KEYSTEAD_APP_DIR": str(app)}, args=("--host", "0.0.0.0")
    )
    svc.start()
    yield svc
    svc.stop()


def raw_get(port: int, target: str, host: str = "127.0.0.1") -> bytes:
    """A request line exactly as written (no client normalizes the path)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(f"GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    return out


def test_files_types_and_headers(plain: ServiceProcess) -> None:
    base = plain.url
    index = httpx.get(base + "/app/")
    assert index.status_code == 200 and index.content == FILES["index.html"]
    assert index.headers["content-type"] == "text/html; charset=utf-8"
    csp = index.headers["content-security-policy"]
    assert "script-src 'self' 'wasm-unsafe-eval'" in csp and "connect-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert index.headers["x-content-type-options"] == "nosniff"
    assert index.headers["cache-control"] == "no-cache"

    expect = {
        "app.3f9a1c2e7b.js": (
            "text/javascript; charset=utf-8",
            "public, max-age=31536000, immutable",
        ),
        "umbral.dab25a0d54.wasm": ("application/wasm", "public, max-age=31536000, immutable"),
        "app.4c69be64d4.css": ("text/css; charset=utf-8", "public, max-age=31536000, immutable"),
        "manifest.webmanifest": ("application/manifest+json", "no-cache"),
        "sw.js": ("text/javascript; charset=utf-8", "no-cache"),
        "icons/icon-192.png": ("image/png", "no-cache"),
    }
    for name, (kind, cache) in expect.items():
        r = httpx.get(f"{base}/app/{name}")
        assert r.status_code == 200 and r.content == FILES[name], name
        assert (r.headers["content-type"], r.headers["cache-control"]) == (kind, cache), name
        assert r.headers["etag"] == '"' + hashlib.sha256(FILES[name]).hexdigest() + '"'
        assert r.headers["content-security-policy"] == csp
    sw = httpx.get(base + "/app/sw.js")
    assert sw.headers["service-worker-allowed"] == "/app/"
    assert "service-worker-allowed" not in index.headers

    # revalidation: the ETag gives 304 without the body
    again = httpx.get(base + "/app/sw.js", headers={"If-None-Match": sw.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    changed = httpx.get(base + "/app/sw.js", headers={"If-None-Match": '"other"'})
    assert changed.status_code == 200
    head = httpx.head(base + "/app/umbral.dab25a0d54.wasm")
    assert head.status_code == 200 and head.content == b"" and head.headers["content-length"] == "8"
    moved = httpx.get(base + "/app")
    assert moved.status_code == 308 and moved.headers["location"] == "/app/"


def test_nothing_outside_the_app_is_served(plain: ServiceProcess) -> None:
    for target in (
        "/app/.hidden",
        "/app/icons/../.hidden",
        "/app/../outside.txt",
        "/app/%2e%2e/outside.txt",
        "/app/icons/%2e%2e/%2e%2e/outside.txt",
        "/app/..%2foutside.txt",
        "/app/icons",
        "/app/nope.js",
        "/app/icons%5c..%5c..%5coutside.txt",
    ):
        answer = raw_get(plain.port, target)
        status = answer.split(b" ", 2)[1]
        assert status in (b"404", b"400"), (target, answer[:200])
        assert b"not part of the app" not in answer and b"secret" not in answer, target


def test_plain_http_off_loopback_is_refused(plain: ServiceProcess) -> None:
    """The attacker on the home network path would change the app's code: over plain http
    the app is not served to anything but a loopback address."""
    spoofed = httpx.get(plain.url + "/app/", headers={"Host": "192.168.1.20:8470"})
    assert spoofed.status_code == 403
    assert spoofed.json()["error"] == "forbidden" and "HTTPS" in spoofed.json()["message"]
    page = httpx.get(
        plain.url + "/app/sw.js", headers={"Host": "keystead.home", "Accept": "text/html"}
    )
    assert page.status_code == 403 and "HTTPS required" in page.text
    assert FILES["sw.js"] not in page.content
    # nginx terminating TLS on this machine: X-Forwarded-Proto from a trusted (loopback) peer
    proxied = httpx.get(
        plain.url + "/app/", headers={"Host": "keystead.home", "X-Forwarded-Proto": "https"}
    )
    assert proxied.status_code == 200 and proxied.content == FILES["index.html"]
    # the API itself is not affected
    assert httpx.get(plain.url + "/v1/health", headers={"Host": "keystead.home"}).status_code == 200
    lan = lan_address()
    if lan is not None:  # this machine's own network address: not loopback
        direct = httpx.get(f"http://{lan}:{plain.port}/app/")
        assert direct.status_code == 403
    assert httpx.get(f"http://localhost:{plain.port}/app/").status_code == 200


# ------------------------------------------------------------------ TLS
def printed_fingerprint(log: str) -> list[str]:
    return re.findall(r"SHA256 ((?:[0-9A-F]{2}:){31}[0-9A-F]{2})", log)


def test_self_signed_tls(tmp_path: Path) -> None:
    data = tmp_path / "service-data"
    svc = ServiceProcess(
        database_url(tmp_path),
        tmp_path,
        env={
            "KEYSTEAD_SERVICE_DIR": str(data),
            "KEYSTEAD_APP_DIR": str(make_app(tmp_path / "app")),
        },
        args=("--tls-self-signed", "--tls-name", "127.0.0.1", "--tls-name", "localhost"),
        verify=False,  # the certificate does not exist before the service makes it
    )
    with svc:
        log = (tmp_path / "service.log").read_text()
        cert_file = data / "tls" / "self-signed.pem"
        cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
        actual = ":".join(f"{b:02X}" for b in cert.fingerprint(hashes.SHA256()))
        assert printed_fingerprint(log) == [actual]
        assert "keystead service on https://" in log
        app = f"https://127.0.0.1:{svc.port}/app/"
        assert f"the phone app: {app}" in log and render_qr(app) in log
        assert (data / "tls" / "self-signed.key").stat().st_mode & 0o077 == 0

        ctx = ssl.create_default_context(cafile=str(cert_file))
        for host in ("127.0.0.1", "localhost"):
            r = httpx.get(f"https://{host}:{svc.port}/v1/health", verify=ctx)
            assert r.status_code == 200
        # over HTTPS the app is served whatever name the phone used
        r = httpx.get(app, verify=ctx, headers={"Host": f"192.168.1.20:{svc.port}"})
        assert r.status_code == 200 and r.content == FILES["index.html"]
        # a client that does not trust the certificate is refused by TLS itself
        with pytest.raises(httpx.ConnectError):
            httpx.get(app)
    # restarted: the same certificate, so a phone that trusts it keeps trusting it
    with svc:
        log = (tmp_path / "service.log").read_text()
        assert printed_fingerprint(log) == [actual, actual]
        assert "self-signed certificate (reused)" in log


def test_given_certificate(tmp_path: Path) -> None:
    cert_file, key_file = _cert(tmp_path, "localhost")
    svc = ServiceProcess(
        database_url(tmp_path),
        tmp_path,
        args=("--tls-cert", str(cert_file), "--tls-key", str(key_file)),
        verify=ssl.create_default_context(cafile=str(cert_file)),
    )
    with svc:
        ctx = ssl.create_default_context(cafile=str(cert_file))
        assert httpx.get(f"https://localhost:{svc.port}/v1/health", verify=ctx).status_code == 200
        log = (tmp_path / "service.log").read_text()
        cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
        actual = ":".join(f"{b:02X}" for b in cert.fingerprint(hashes.SHA256()))
        assert printed_fingerprint(log) == [actual]


def _cert(folder: Path, name: str) -> tuple[Path, Path]:
    from keystead.core.service.tls import self_signed

    files = self_signed(folder / name, [name, "127.0.0.1"])
    return files.cert, files.key


def serve(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "keystead.core.cli", "serve", "--port", "1", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "KEYSTEAD_SERVICE_DIR": str(data)},
    )


def test_bad_tls_options_are_one_line_and_exit_1(tmp_path: Path) -> None:
    cert, key = _cert(tmp_path, "localhost")
    _, other_key = _cert(tmp_path, "other.example")
    encrypted = tmp_path / "encrypted.key"
    encrypted.write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"pw"),
        )
    )
    cases = {
        ("--tls-cert", str(tmp_path / "missing.pem"), "--tls-key", str(key)): "cannot read",
        ("--tls-cert", str(key), "--tls-key", str(key)): "not a PEM certificate",
        ("--tls-cert", str(cert), "--tls-key", str(cert)): "not a PEM private key",
        ("--tls-cert", str(cert), "--tls-key", str(other_key)): "does not belong",
        ("--tls-cert", str(cert), "--tls-key", str(encrypted)): "encrypted",
        ("--tls-cert", str(cert)): "go together",
        ("--tls-self-signed", "--tls-cert", str(cert), "--tls-key", str(key)): "exclude",
        ("--tls-name", "localhost"): "--tls-self-signed",
        ("--tls-self-signed", "--tls-name", "bad name!"): "not a host name",
    }
    for args, words in cases.items():
        proc = serve(tmp_path / "data", *args)
        assert proc.returncode == 1, (args, proc.stderr)
        assert proc.stdout == "" and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        assert words in proc.stderr, (args, proc.stderr)
