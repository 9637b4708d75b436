"""deploy/nginx.conf terminating TLS in front of a real ``keystead serve``: the app is served
to any host name over https, and a device's signed requests (whose origin is
``https://HOST``) verify at the service behind the proxy."""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from keystead.core.service.tls import self_signed
from keystead.core.testing import DeviceHome, ServiceProcess, database_url, free_port, unique

ROOT = Path(__file__).resolve().parents[3]
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def _render(listen: int, backends: list[int]) -> str:
    sys.path.insert(0, str(ROOT / "deploy"))
    try:
        import render
    finally:
        sys.path.pop(0)
    return str(render.render(listen, backends))


@pytest.fixture
def nginx_tls(tmp_path: Path) -> Iterator[tuple[str, Path, ServiceProcess]]:
    if not os.path.exists(NGINX):
        pytest.fail("nginx is not installed (scripts/test installs it: apt-get install nginx)")
    svc = ServiceProcess(database_url(tmp_path), tmp_path)
    svc.start()
    tls = self_signed(tmp_path / "tls", ["localhost", "127.0.0.1"])
    prefix = tmp_path / "nginx"
    prefix.mkdir()
    port = free_port()
    conf = _render(port, [svc.port])
    plain = f"listen 127.0.0.1:{port};"
    assert plain in conf
    conf = conf.replace(
        plain,
        f"listen 127.0.0.1:{port} ssl; ssl_certificate {tls.cert}; ssl_certificate_key {tls.key};",
        1,
    )
    (prefix / "nginx.conf").write_text(conf)
    with open(prefix / "error.log", "wb") as errlog:
        user = ["-g", "user root;"] if os.geteuid() == 0 else []
        nginx = subprocess.Popen(
            [NGINX, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), *user], stderr=errlog
        )
    url = f"https://localhost:{port}"
    ctx = ssl.create_default_context(cafile=str(tls.cert))
    try:
        for _ in range(100):
            try:
                if httpx.get(url + "/v1/health", timeout=1, verify=ctx).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        yield url, tls.cert, svc
    finally:
        nginx.terminate()
        nginx.wait(10)
        svc.stop()


def test_app_and_signed_requests_through_tls_nginx(
    nginx_tls: tuple[str, Path, ServiceProcess], tmp_path: Path
) -> None:
    url, cert, svc = nginx_tls
    ctx = ssl.create_default_context(cafile=str(cert))
    app = httpx.get(url + "/app/", verify=ctx, headers={"Host": "keystead.home"})
    assert app.status_code == 200 and app.headers["content-type"].startswith("text/html")
    assert "wasm-unsafe-eval" in app.headers["content-security-policy"]
    # the same service reached directly over plain http under that name: refused
    direct = httpx.get(f"http://127.0.0.1:{svc.port}/app/", headers={"Host": "keystead.home"})
    assert direct.status_code == 403
    # a device through the proxy: its requests are signed for https://localhost:PORT
    admin = DeviceHome(tmp_path / "laptop")
    env = admin.env(SSL_CERT_FILE=str(cert))
    name = unique("tls")
    admin.run("account", "create", name, "--server", url, "--device", "laptop", env=env)
    shown = admin.run("device", "list", "--json", env=env)
    assert "laptop" in shown.stdout
    invite = admin.run("device", "invite", "--no-qr", env=env).stdout
    assert invite.startswith(f"invite: {url}/app/#join={name}&fp=SHA256%3A")
