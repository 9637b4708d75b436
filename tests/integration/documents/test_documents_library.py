"""The library path against a real service: a cfrag that fails verification is refused.

The core checks every cfrag against the owner's kfrag signer (tests/unit/core/test_device.py
covers a device's own grants); here the service answers a grantee's open of one document
with a genuine cfrag made for another document's capsule, on the cross-account path
documents use.
"""

from __future__ import annotations

import json

import httpx
import pytest
from keystead.adapters.documents import read_header
from keystead.adapters.documents._access import data_key_for
from keystead.core import Device, Home, VerificationError


class SwapCfrags(httpx.BaseTransport):
    """Remembers the last cfrags; when ``swap`` is set, answers with those instead."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.last: list[dict] = []  # type: ignore[type-arg]
        self.swap = False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        resp = self.inner.handle_request(request)
        if not request.url.path.endswith("/reencrypt") or resp.status_code != 200:
            return resp
        resp.read()
        resp.close()
        cfrags = json.loads(resp.content)["cfrags"]
        if self.swap:
            cfrags = self.last
        self.last = cfrags
        return httpx.Response(200, json={"cfrags": cfrags}, request=request)

    def close(self) -> None:
        self.inner.close()


def test_grantee_refuses_a_cfrag_for_another_capsule(make_account, tmp_path):
    alice, bob = make_account("alice"), make_account("bob")
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    for src in (a, b):
        src.write_bytes(b"x" * 1000)
        alice.admin.run("doc", "protect", str(src), "-o", str(src) + ".kst")
    alice.admin.run("doc", "grant", "default", bob.name)
    headers = []
    for src in (a, b):
        with open(str(src) + ".kst", "rb") as f:
            headers.append(read_header(f))
    transport = SwapCfrags()
    with Device.open(
        Home.from_env(bob.admin.path), bob.admin.passphrase, transport=transport
    ) as dev:
        assert len(data_key_for(dev, headers[0])) == 32
        transport.swap = True
        with pytest.raises(VerificationError):
            data_key_for(dev, headers[1])
        transport.swap = False
        assert len(data_key_for(dev, headers[1])) == 32
