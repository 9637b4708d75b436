"""The signed items read as a bare ASGI app on the service's own Store: no FastAPI, no
middleware. ``service_load.py`` runs it under uvicorn beside the service, on the same
database, to show what the framework costs and what it does not. ``KEYSTEAD_BARE_MODE``:

- ``read`` (the default): the whole signed read, in one thread-pool trip as the service
  makes it: the signature, the device row, the nonce commit, the read, JSON.
- ``verify``: only the request's Ed25519 signature, checked on the event loop against the
  device key read once at start; no database. A bound: no design that checks a signature
  per request can go faster on this stack. ``KEYSTEAD_BARE_CHECKS=2`` checks it twice, the
  cost of a single-item write's two signatures (the request's, and the item's writer's,
  which the service checks so that no device stores an item in another's name).
- ``open``: only the read and its JSON, on the event loop, no authentication and no
  thread pool. A bound on any design over this store, whatever it authenticates with.

    KEYSTEAD_BARE_DB=sqlite:///... uvicorn bare_read:app --loop asyncio --http httptools
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from keystead.core.requests import MAX_SKEW, RequestAuth, parse_auth
from keystead.core.service.config import SQLITE_THREADS
from keystead.core.service.db import make_engine
from keystead.core.service.store import Store

_store = Store(make_engine(os.environ["KEYSTEAD_BARE_DB"]))
_threads = ThreadPoolExecutor(SQLITE_THREADS)  # as the service on SQLite
_MODE = os.environ.get("KEYSTEAD_BARE_MODE", "read")
_CHECKS = int(os.environ.get("KEYSTEAD_BARE_CHECKS", "1"))
_ITEMS = re.compile(r"/v1/accounts/([^/]+)/collections/([^/]+)/items")
_devices: dict[tuple[str, str], Any] = {}


def _items_json(account: str, collection: str) -> bytes:
    items = _store.changes(account, collection, 0, 1000)
    return json.dumps({"items": [i.to_json() for i in items]}).encode()


def _read(auth: RequestAuth, origin: str, path: str, account: str, collection: str) -> bytes:
    _, body = _store.authenticate(
        auth,
        method="GET",
        origin=origin,
        path=path,
        body=b"",
        now=int(time.time()),
        max_skew=MAX_SKEW,
        account=account,
        scope=collection,
        then=lambda _device, _nonce: _items_json(account, collection),
    )
    assert body is not None
    return body


def _verify(auth: RequestAuth, origin: str, path: str) -> bytes:
    device = _devices.get((auth.account, auth.device))
    if device is None:  # read once per device, not per request
        device = _devices[(auth.account, auth.device)] = _store.device(auth.account, auth.device)
    for _ in range(_CHECKS):
        auth.verify(
            device.signing_key,
            method="GET",
            origin=origin,
            path=path,
            body=b"",
            now=int(time.time()),
        )
    return b'{"verified":true}'


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
    match, auth = _ITEMS.fullmatch(scope["path"]), parse_auth(headers)
    status, body = 404, b'{"error":"not_found"}'
    if match and auth is not None:
        origin = f"http://{headers.get('host', '')}"
        path = scope["raw_path"].decode("latin-1")
        status = 200
        if _MODE == "verify":
            body = _verify(auth, origin, path)
        elif _MODE == "open":
            body = _items_json(match[1], match[2])
        else:
            loop = asyncio.get_running_loop()
            body = await loop.run_in_executor(
                _threads, _read, auth, origin, path, match[1], match[2]
            )
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
