"""A client that hangs up in the middle of its request body (issue 12, "Bad input and
faults"): a real service process, raw sockets. Nothing is stored, the service goes on, and
the log has one access line with status 499 for each, not a traceback."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

from keystead.core.requests import origin_of, sign_request
from keystead.core.testing import ServiceProcess
from test_service_deploy import _client, _close_clients, _device  # noqa: F401 (autouse)


def _hang_up_mid_body(port: int, head: bytes, body: bytes) -> None:
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(head + b"\r\n\r\n" + body[: len(body) // 2])
        time.sleep(0.3)  # the service is reading the body now


def test_a_client_gone_mid_body_stores_nothing_and_logs_no_traceback(tmp_path: Path) -> None:
    url = os.environ.get("KEYSTEAD_TEST_DATABASE_URL") or f"sqlite:///{tmp_path}/s.sqlite"
    with ServiceProcess(url, tmp_path, env={"KEYSTEAD_ACCESS_LOG": "true"}) as svc:
        dev = _device(tmp_path, svc.url)
        client = _client(dev, svc.url)
        items = f"/accounts/{dev.account}/collections/notes/items"
        before = client.get(items)

        # a signed item write: its headers whole (digest of the body it means to send)
        path = "/v1" + items
        body = json.dumps({"items": [{"id": "x" * 4000}]}).encode()
        signed = sign_request(
            dev.keys.signing,
            account=dev.account,
            device=dev.device_id,
            method="POST",
            origin=origin_of(svc.url),
            path=path,
            body=body,
            time=int(time.time()),
        )
        lines = [
            f"POST {path} HTTP/1.1",
            f"host: 127.0.0.1:{svc.port}",
            "content-type: application/json",
            f"content-length: {len(body)}",
            "keystead-protocol: 2",
            *(f"{k}: {v}" for k, v in signed.items()),
        ]
        _hang_up_mid_body(svc.port, "\r\n".join(lines).encode(), body)
        # an unsigned route that reads its body: account creation
        account = json.dumps({"name": "nobody", "pad": "y" * 4000}).encode()
        head = (
            "POST /v1/accounts HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            f"keystead-protocol: 2\r\ncontent-length: {len(account)}"
        )
        _hang_up_mid_body(svc.port, head.encode(), account)

        assert client.get(items) == before  # nothing stored, and the service goes on
        time.sleep(0.2)
        log = (tmp_path / "service.log").read_text()
        assert "Traceback" not in log
        gone = [
            json.loads(line)
            for line in log.splitlines()
            if line.startswith("{") and '"status":499' in line
        ]
        assert {g["route"] for g in gone} == {
            "/v1/accounts",
            "/v1/accounts/{account}/collections/{collection}/items",
        }
