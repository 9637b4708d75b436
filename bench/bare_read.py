"""The signed items read as a bare ASGI app on the service's own Store: no FastAPI, no
middleware, one thread-pool trip. ``service_load.py`` runs it under uvicorn beside the
service, on the same database, to show what the framework costs and what it does not: the
signature, the device row, the nonce commit and the read are all still here.

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

from keystead.core.requests import MAX_SKEW, parse_auth
from keystead.core.service.config import SQLITE_THREADS
from keystead.core.service.db import make_engine
from keystead.core.service.store import Store

_store = Store(make_engine(os.environ["KEYSTEAD_BARE_DB"]))
_threads = ThreadPoolExecutor(SQLITE_THREADS)  # as the service on SQLite
_ITEMS = re.compile(r"/v1/accounts/([^/]+)/collections/([^/]+)/items")


def _read(auth: Any, origin: str, path: str, account: str, collection: str) -> bytes:
    def then(_device: Any, _nonce: Any) -> bytes:
        items = _store.changes(account, collection, 0, 1000)
        return json.dumps({"items": [i.to_json() for i in items]}).encode()

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
        then=then,
    )
    assert body is not None
    return body


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
    match, auth = _ITEMS.fullmatch(scope["path"]), parse_auth(headers)
    status, body = 404, b'{"error":"not_found"}'
    if match and auth is not None:
        origin = f"http://{headers.get('host', '')}"
        path = scope["raw_path"].decode("latin-1")
        loop = asyncio.get_running_loop()
        status = 200
        body = await loop.run_in_executor(_threads, _read, auth, origin, path, match[1], match[2])
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
