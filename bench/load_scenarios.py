"""The scenarios of bench/service_load.py, each measured against running services and
returned as figures (service_load.py turns them into the table): the devices and requests
they use, idle long polls held by the thousand, one account's re-encryptions beside
another's reads, the wake of a waiter on one process by a post to another, the batch
re-encryption endpoint against raw ``umbral_pre``, and ``bare_read.py`` under uvicorn."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from pathlib import Path
from typing import Any

from _harness import new_account, pct
from keystead.core import seal_to_key
from keystead.core._encoding import b64e
from keystead.core.device import Device
from keystead.core.testing import ServiceProcess, free_port
from loadgen import Signed, load
from servers import tree_cpu, uvicorn_server


# ------------------------------------------------------------------ the devices and requests
def direct_message(sender: Device, to: Device, text: str = "wake") -> dict[str, Any]:
    """A real direct message from ``sender`` to ``to``'s account: a fresh message key sealed to
    the current epoch of its ``messages`` key, the body under it, the envelope signed."""
    from keystead.adapters.messaging._envelope import (
        body_ad,
        make_envelope,
        new_message_id,
        seal_body,
    )

    chain = to.chain(refresh=False)
    key, message_id, now = os.urandom(32), new_message_id(), int(time.time())
    body = seal_body(key, text, body_ad(message_id, sender.address, sender.device_id, now, None))
    wire = make_envelope(
        sender.keys.signing,
        message_id=message_id,
        sender=sender.address,
        device=sender.device_id,
        to=to.address,
        time=now,
        group=None,
        sealed_key=seal_to_key(chain, "messages", key),
        body=body,
    )
    return {"body": b64e(wire)}


def device_on(svc: ServiceProcess, root: Path, name: str) -> Device:
    return new_account(svc, root, name, ("notes", "messages"))


def fill_notes(dev: Device) -> None:
    from keystead.core.collections import Collection

    c = Collection(dev, "notes")
    for i in range(10):
        c.put(f"item{i}", b"x" * 100)


def items_path(dev: Device) -> str:
    return f"/v1/accounts/{dev.account}/collections/notes/items"


# ------------------------------------------------------------------ scenarios
async def _hold_waiters(
    port: int,
    make: Signed,
    n: int,
    ready: threading.Event,
    stop: threading.Event,
    out: dict[str, Any],
) -> None:
    out.update(opened=0, answered_early=0, failed=0)

    async def one(raw: bytes) -> None:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            out["failed"] += 1
            return
        writer.write(raw)
        out["opened"] += 1
        try:
            while not stop.is_set():
                try:
                    if await asyncio.wait_for(reader.read(65536), 1):
                        out["answered_early"] += 1  # a refusal, or the wait expired
                    return
                except TimeoutError:
                    continue
        finally:
            writer.close()

    tasks = []
    for i in range(0, n, 200):
        # signed just before they are sent, so every one is inside the time window
        tasks += [asyncio.ensure_future(one(r)) for r in make(min(200, n - i))]
        await asyncio.sleep(0.05)
    ready.set()
    await asyncio.gather(*tasks, return_exceptions=True)


def _waiters(url: str) -> float:
    import httpx

    text = httpx.get(url + "/metrics", timeout=30).text
    line = next(x for x in text.splitlines() if x.startswith("keystead_waiters "))
    return float(line.split()[1])


def idle_waiters(
    svc: ServiceProcess, dev: Device, reader_dev: Device, n: int, seconds: float
) -> dict[str, Any]:
    # Establishing 10,000 signed long polls takes longer than the default 60 s maximum
    # (each authenticates, a nonce write): the bench service allows 600 s waits.
    path = f"/v1/accounts/{dev.account}/spool/messages?after=0&wait=600"
    make = Signed(dev, svc.url, "GET", path)
    ready, stop = threading.Event(), threading.Event()
    held: dict[str, Any] = {}
    t0 = time.perf_counter()
    t = threading.Thread(
        target=lambda: asyncio.run(_hold_waiters(svc.port, make, n, ready, stop, held))
    )
    t.start()
    ready.wait()
    best, since = 0.0, time.perf_counter()
    while time.perf_counter() - t0 < 900:  # every waiter authenticated and parked
        waiting = _waiters(svc.url)
        if waiting >= n:
            break
        if waiting > best:
            best, since = waiting, time.perf_counter()
        elif time.perf_counter() - since > 30:  # no progress for 30 s: take what is held
            break
        time.sleep(0.5)
    assert svc.process is not None
    # The gauge counts a waiter when it subscribes, before its first spool read has gone
    # through the thread pool: wait until the process is idle (2 s under 5 % of a core, at
    # most 300 s) before the timed window, so it measures holding, not establishing.
    settle = time.perf_counter()
    while time.perf_counter() - settle < 300:
        c0 = tree_cpu(svc.process.pid)
        time.sleep(2)
        if tree_cpu(svc.process.pid) - c0 < 0.1:
            break
    established_s = time.perf_counter() - t0
    waiting = _waiters(svc.url)
    c0, w0 = tree_cpu(svc.process.pid), time.perf_counter()
    time.sleep(seconds)
    cpu = (tree_cpu(svc.process.pid) - c0) / (time.perf_counter() - w0)
    reads = load(
        svc.port,
        Signed(reader_dev, svc.url, "GET", items_path(reader_dev)),
        rate_guess=1500,
        conns=2,
        seconds=seconds,
        procs=1,
    )
    still = _waiters(svc.url)
    stop.set()
    t.join()
    return {
        "asked": n,
        "waiters": int(waiting),
        "still_waiting": int(still),
        "established_s": established_s,
        "idle_cpu_pct": cpu * 100,
        **held,
        **{f"read_{k}": v for k, v in reads.items()},
    }


def bare_read_load(
    root: Path, reader: Device, mode: str, secs: float, checks: int = 1
) -> dict[str, Any]:
    """``bench/bare_read.py`` in ``mode`` under uvicorn on the service's database, loaded
    with the reader's signed reads."""
    port = free_port()
    proc = uvicorn_server(
        "bare_read:app",
        port,
        Path(__file__).parent,
        KEYSTEAD_BARE_DB=f"sqlite:///{root}/s.sqlite",
        KEYSTEAD_BARE_MODE=mode,
        KEYSTEAD_BARE_CHECKS=str(checks),
    )
    try:
        req = Signed(reader, f"http://127.0.0.1:{port}", "GET", items_path(reader))
        req.check()
        return load(port, req, rate_guess=3000, seconds=secs)
    finally:
        proc.terminate()
        proc.wait()


def _capsule_request(dev: Device) -> dict[str, Any]:
    info = dev.chain().collection("notes").epoch(1)
    assert info.capsule is not None
    return {"key": "notes", "epoch": 1, "capsule": b64e(info.capsule)}


def isolation(
    svc: ServiceProcess, heavy: Device, reader_dev: Device, seconds: float
) -> dict[str, Any]:
    from keystead.core.client import ServiceClient, Signer

    body = {"requests": [_capsule_request(heavy)] * 20_000}
    stop = threading.Event()
    done = [0]
    took = [0.0]

    def hammer() -> None:
        client = ServiceClient(
            svc.url, signer=Signer(heavy.account, heavy.device_id, heavy.keys.signing), timeout=300
        )
        t = time.perf_counter()
        while not stop.is_set():
            client.post(f"/accounts/{heavy.account}/reencrypt", body)
            done[0] += 20_000
        took[0] = time.perf_counter() - t
        client.close()

    t = threading.Thread(target=hammer)
    t.start()
    time.sleep(2)
    reads = load(
        svc.port,
        Signed(reader_dev, svc.url, "GET", items_path(reader_dev)),
        rate_guess=1500,
        conns=2,
        seconds=seconds,
        procs=1,
    )
    stop.set()
    t.join()
    return {
        "capsules_done": done[0],
        "capsules_per_s": done[0] / took[0],
        **{f"read_{k}": v for k, v in reads.items()},
    }


def wake_latency(
    a: ServiceProcess,
    b: ServiceProcess,
    dev: Device,
    sender: Device,
    rounds: int,
    via: str | None = None,
) -> dict[str, Any]:
    """``dev`` long-polls its ``messages`` spool on B; ``sender`` posts a direct message to
    it on A (both through ``via`` when given); latency from the post to the wake."""
    from keystead.core.client import ServiceClient, Signer

    waiter = ServiceClient(
        via or b.url, signer=Signer(dev.account, dev.device_id, dev.keys.signing)
    )
    poster = ServiceClient(
        via or a.url, signer=Signer(sender.account, sender.device_id, sender.keys.signing)
    )
    cursor = max(
        [
            m["id"]
            for m in waiter.get(f"/accounts/{dev.account}/spool/messages", params={"after": 0})[
                "messages"
            ]
        ]
        or [0]
    )
    lat: list[float] = []
    posted: list[float] = []  # the post's own round trip, answered after its commit
    for _ in range(rounds):
        out: dict[str, Any] = {}

        def wait(after: int = cursor, out: dict[str, Any] = out) -> None:
            out["r"] = waiter.get(
                f"/accounts/{dev.account}/spool/messages",
                params={"after": after, "wait": 10},
                timeout=20,
            )
            out["t"] = time.perf_counter()

        message = direct_message(sender, dev)
        t = threading.Thread(target=wait)
        t.start()
        time.sleep(0.05)
        t0 = time.perf_counter()
        cursor = poster.post(f"/messaging/direct/{dev.account}", message)["id"]
        posted.append(time.perf_counter() - t0)
        t.join()
        if [m["id"] for m in out["r"]["messages"]] != [cursor]:
            raise SystemExit(f"wake: the waiter got {out['r']} instead of message {cursor}")
        lat.append(out["t"] - t0)
    waiter.close()
    poster.close()
    return {
        "p50_ms": pct(lat, 50) * 1000,
        "p99_ms": pct(lat, 99) * 1000,
        "post_p50_ms": pct(posted, 50) * 1000,
        "rounds": rounds,
    }


def reencrypt_rates(svc: ServiceProcess, dev: Device, batches: int) -> dict[str, Any]:
    """The batch endpoint against raw ``umbral_pre.reencrypt`` in one process (the service's
    CPU pool is one worker process on 2 cores): raw is measured before and after the
    service's runs and averaged, since the machine's load moves between them.

    Two service figures: the bench's usual request (one epoch's capsule 10,000 times, as
    every device reading that epoch sends it: the worker parses it once) and 10,000
    distinct capsules (each parsed, i.e. checked, once). "raw" takes parsed capsules and
    returns cfrag objects; the floor row does what any service must per distinct capsule:
    parse the capsule's bytes and serialize the cfrag."""
    import umbral_pre
    from keystead.core.client import ServiceClient, Signer

    alice, bob, signer = (umbral_pre.SecretKey.random() for _ in range(3))
    kfrag = umbral_pre.generate_kfrags(
        delegating_sk=alice,
        receiving_pk=bob.public_key(),
        signer=umbral_pre.Signer(signer),
        threshold=1,
        shares=1,
        sign_delegating_key=True,
        sign_receiving_key=True,
    )[0]
    capsules = [umbral_pre.encrypt(alice.public_key(), b"k" * 32)[0] for _ in range(2000)]
    raw_bytes = [bytes(c) for c in capsules]

    def raw() -> float:
        t = time.perf_counter()
        for c in capsules:
            umbral_pre.reencrypt(c, kfrag)
        return len(capsules) / (time.perf_counter() - t)

    def floor() -> float:
        t = time.perf_counter()
        for b in raw_bytes:
            bytes(umbral_pre.reencrypt(umbral_pre.Capsule.from_bytes(b), kfrag))
        return len(raw_bytes) / (time.perf_counter() - t)

    raw_before, floor_before = raw(), floor()
    body = {"requests": [_capsule_request(dev)] * 10_000}
    distinct = {
        "requests": [
            {"key": "notes", "epoch": 1, "capsule": b64e(bytes(c))}
            for c in (umbral_pre.encrypt(alice.public_key(), b"k" * 32)[0] for _ in range(10_000))
        ]
    }
    client = ServiceClient(
        svc.url, signer=Signer(dev.account, dev.device_id, dev.keys.signing), timeout=300
    )
    client.post(f"/accounts/{dev.account}/reencrypt", {"requests": body["requests"][:10]})
    t = time.perf_counter()
    for _ in range(batches):
        client.post(f"/accounts/{dev.account}/reencrypt", body)
    rate = batches * 10_000 / (time.perf_counter() - t)
    t = time.perf_counter()
    client.post(f"/accounts/{dev.account}/reencrypt", distinct)
    distinct_rate = 10_000 / (time.perf_counter() - t)
    client.close()
    raw_after, floor_after = raw(), floor()
    raw_rate = (raw_before + raw_after) / 2
    floor_rate = (floor_before + floor_after) / 2
    return {
        "raw_per_s": raw_rate,
        "raw_range": (min(raw_before, raw_after), max(raw_before, raw_after)),
        "floor_per_s": floor_rate,
        "service_per_s": rate,
        "ratio": rate / raw_rate,
        "distinct_per_s": distinct_rate,
    }
