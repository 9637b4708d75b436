"""The load generator of bench/service_load.py: prepared raw HTTP/1.1 requests sent over
keep-alive connections by forked processes, each on its own asyncio loop, with the latency of
every answer; and the request factories (signed reads, plain GETs, new items to write).

Requests are built before the clock starts (signing is the device's cost, not the
service's), so the generator's own ceiling is only sockets and parsing: service_load.py
shows it drives at least twice the fastest signed rate.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import time
from typing import Any
from urllib.parse import urlsplit

from _harness import pct
from keystead.core.device import Device
from keystead.core.items import seal_item, sign_items
from keystead.core.requests import origin_of, sign_request

__all__ = ["NewItems", "Plain", "Signed", "load"]

PROTOCOL_HEADER, PROTOCOL_VERSION = "keystead-protocol", "2"


def _request(method: str, path: str, body: bytes, headers: dict[str, str], host: str) -> bytes:
    lines = [
        f"{method} {path} HTTP/1.1",
        f"host: {host}",
        f"content-length: {len(body)}",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw: bytes) -> int:
    writer.write(raw)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    await reader.readexactly(length)
    return status


async def _drive(
    port: int, reqs: list[bytes], conns: int, seconds: float
) -> tuple[int, list[float], int]:
    """Send the prepared requests over ``conns`` keep-alive connections for ``seconds``."""
    it = iter(reqs)
    lat: list[float] = []
    bad = 0
    deadline = time.perf_counter() + seconds

    async def one() -> None:
        nonlocal bad
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=2**22)
        try:
            while time.perf_counter() < deadline:
                raw = next(it, None)
                if raw is None:
                    return
                t = time.perf_counter()
                status = await _exchange(reader, writer, raw)
                lat.append(time.perf_counter() - t)
                if status >= 400:
                    bad += 1
        finally:
            writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(conns)))
    took = time.perf_counter() - start
    return int(len(lat) / took), lat, bad


def _gen_proc(port: int, make: Any, n: int, conns: int, seconds: float, q: Any) -> None:
    reqs = make(n)
    q.put(asyncio.run(_drive(port, reqs, conns, seconds)))


def load(
    port: int, make: Any, *, rate_guess: int, conns: int = 32, seconds: float = 5, procs: int = 2
) -> dict[str, Any]:
    """Run ``procs`` generator processes; ``make(n)`` builds n prepared requests."""
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    n = int(rate_guess * seconds / procs) + 200
    ps = [
        ctx.Process(target=_gen_proc, args=(port, make, n, max(1, conns // procs), seconds, q))
        for _ in range(procs)
    ]
    for p in ps:
        p.start()
    results = [q.get() for _ in ps]
    for p in ps:
        p.join()
    lat = [x for _, ls, _ in results for x in ls]
    return {
        "rate": sum(r for r, _, _ in results),
        "p50_ms": pct(lat, 50) * 1000,
        "p99_ms": pct(lat, 99) * 1000,
        "errors": sum(b for _, _, b in results),
    }


class Signed:
    """Picklable request factory: n requests signed by one device (unique nonces), for the
    service at ``base_url`` (protocol version 2: the signature covers its origin)."""

    def __init__(
        self, dev: Device, base_url: str, method: str, path: str, body: Any = None
    ) -> None:
        self.account, self.device = dev.account, dev.device_id
        self.key = dev.keys.signing
        self.origin, self.host = origin_of(base_url), urlsplit(base_url).netloc
        self.method, self.path, self.body = method, path, body

    def __call__(self, n: int) -> list[bytes]:
        out = []
        for i in range(n):
            body = (
                b""
                if self.body is None
                else json.dumps(self.body(i), separators=(",", ":")).encode()
            )
            h = {
                PROTOCOL_HEADER: PROTOCOL_VERSION,
                **sign_request(
                    self.key,
                    account=self.account,
                    device=self.device,
                    method=self.method,
                    origin=self.origin,
                    path=self.path,
                    body=body,
                    time=int(time.time()),
                ),
            }
            if body:
                h["content-type"] = "application/json"
            out.append(_request(self.method, self.path, body, h, self.host))
        return out

    def check(self) -> None:
        """Send one of these requests first: a refusal stops the bench with its answer."""
        import httpx

        raw = self(1)[0]
        head, _, body = raw.partition(b"\r\n\r\n")
        headers = dict(line.split(": ", 1) for line in head.decode().split("\r\n")[1:])
        resp = httpx.request(
            self.method, f"http://{self.host}{self.path}", content=body, headers=headers, timeout=60
        )
        if resp.status_code >= 400:
            raise SystemExit(f"{self.method} {self.path}: {resp.status_code} {resp.text}")


class Plain:
    def __init__(self, base_url: str, path: str) -> None:
        self.host, self.path = urlsplit(base_url).netloc, path

    def __call__(self, n: int) -> list[bytes]:
        return [_request("GET", self.path, b"", {}, self.host)] * n


class NewItems:
    """Write bodies: one new item per request, each with a distinct new id, built the way a
    device builds it (Collection._seal/_sign): sealed under the collection's current epoch
    with the device's epoch data key and signed by the writer (a Merkle group of one)."""

    def __init__(self, dev: Device, collection: str, size: int = 200) -> None:
        self.account, self.writer, self.key = dev.account, dev.device_id, dev.keys.signing
        self.collection, self.size = collection, size
        self.epoch = dev.chain().collection(collection).current_epoch
        self.data_key = dev.epoch_keys(collection, [self.epoch])[self.epoch]

    def __call__(self, i: int) -> dict[str, Any]:
        item = seal_item(
            self.data_key,
            account=self.account,
            collection=self.collection,
            item_id=f"w{os.getpid()}-{i}-{time.monotonic_ns()}",
            version=1,
            epoch=self.epoch,
            plaintext=os.urandom(self.size),
            writer=self.writer,
        )
        signed = sign_items(
            self.key, account=self.account, collection=self.collection, items=[item]
        )
        return {"items": [x.to_json() for x in signed]}
