"""Keystead phone adapter: serves the phone's web app (a progressive web app) at ``/app/``.

The app is a full device written in the browser (``adapters/phone/web/``, built into
``adapters/phone/app/`` and shipped inside the Python package, so installing Keystead needs
no Node). This adapter only serves those files, with the headers a phone needs (types,
caching, a strict Content-Security-Policy) and only over HTTPS or to a loopback address:
``docs/PHONE.md``. Waking the app with Web Push is the core service's
(``keystead.core.service.push``); pairing the phone is ``keystead device invite``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import click
    from fastapi import APIRouter
    from keystead.core.capabilities import ServiceCapabilities


class _Adapter:
    """The phone app's files; it keeps no collections of its own (the app reads the
    ``confirm``, ``totp`` and ``passwords`` collections as the device it is)."""

    name = "phone"
    collections: tuple[str, ...] = ()
    commands: tuple[str, ...] = ()

    def cli_groups(self) -> Mapping[str, click.Command]:
        return {}

    def routes(self, caps: ServiceCapabilities) -> APIRouter | None:
        from ._serve import app_router

        return app_router(caps)


adapter = _Adapter()

__all__ = ["adapter"]
