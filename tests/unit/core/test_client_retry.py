"""A connection closed under a request with no answer (a worker replaced in a reload): the
client sends a read again on a new connection, signed anew, and never resends a write.

The peer is a real TCP server on loopback that reads each request and hangs up without a
word the first ``drop`` times, then answers."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
from keystead.core.client import ServiceClient, Signer
from keystead.core.crypto import SigningKey
from keystead.core.errors import NetworkError


class HangUp:
    def __init__(self, drop: int) -> None:
        self.drop = drop
        self.requests: list[bytes] = []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                head = b""
                while b"\r\n\r\n" not in head:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    head += chunk
                self.requests.append(head)
                if len(self.requests) <= self.drop:
                    continue  # hang up, no answer
                body = b'{"ok":true}'
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                    b"connection: close\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)
                )

    def nonces(self) -> list[bytes]:
        return [
            line.split(b":", 1)[1].strip()
            for head in self.requests
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"keystead-nonce:")
        ]


@pytest.fixture
def client() -> Iterator[tuple[ServiceClient, list[HangUp]]]:
    servers: list[HangUp] = []
    clients: list[ServiceClient] = []

    def make(drop: int) -> ServiceClient:
        server = HangUp(drop)
        servers.append(server)
        c = ServiceClient(
            f"http://127.0.0.1:{server.port}",
            signer=Signer("acct", "dev", SigningKey.generate()),
        )
        clients.append(c)
        return c

    yield make, servers  # type: ignore[misc]
    for c in clients:
        c.close()
    for s in servers:
        s.sock.close()


def test_a_read_is_sent_again_signed_anew(client) -> None:  # type: ignore[no-untyped-def]
    make, servers = client
    assert make(drop=1).get("/health") == {"ok": True}
    nonces = servers[0].nonces()
    assert len(servers[0].requests) == 2 and len(set(nonces)) == 2  # a new nonce


def test_a_read_is_sent_twice_at_most(client) -> None:  # type: ignore[no-untyped-def]
    make, servers = client
    with pytest.raises(NetworkError, match="cannot reach the service"):
        make(drop=5).get("/health")
    assert len(servers[0].requests) == 2


def test_a_write_is_never_sent_again(client) -> None:  # type: ignore[no-untyped-def]
    make, servers = client
    with pytest.raises(NetworkError, match="cannot reach the service"):
        make(drop=1).post("/items", {"x": 1})
    assert len(servers[0].requests) == 1
