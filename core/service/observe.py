"""What operators see: Prometheus metrics at ``/metrics`` and one JSON access-log line per
request (logger ``keystead.access``).

The metrics live in a registry per app (several apps in one test process do not collide);
with ``--workers N`` each process serves its own numbers, as Prometheus expects of
separately scraped targets.
"""

from __future__ import annotations

import json
import logging
import time
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from .notify import Notifier
    from .workers import CpuPool

__all__ = ["AccessLog", "Metrics"]

access_log = logging.getLogger("keystead.access")


class Metrics:
    def __init__(self, notifier: Notifier, cpu: CpuPool) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "keystead_requests",
            "Requests by route and status",
            ["method", "route", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "keystead_request_seconds",
            "Time to answer, by route",
            ["route"],
            registry=r,
            buckets=(
                0.001,
                0.0025,
                0.005,
                0.01,
                0.025,
                0.05,
                0.1,
                0.25,
                0.5,
                1,
                2.5,
                5,
                10,
                30,
                60,
            ),
        )
        self.reencryptions = Counter("keystead_reencryptions", "Capsules re-encrypted", registry=r)
        self.refusals = Counter(
            "keystead_refusals", "Requests refused by a limit or quota", ["limit"], registry=r
        )
        Gauge("keystead_waiters", "Long polls waiting now", registry=r).set_function(
            lambda: notifier.waiting
        )
        Gauge(
            "keystead_cpu_queue", "Capsules queued or in progress in the CPU pool", registry=r
        ).set_function(lambda: cpu.queued)

    def watch_push(self, push: Any) -> None:
        """Web Push counts of this process (a ``PushSender``)."""
        r = self.registry
        Gauge(
            "keystead_push_sent", "Pushes a push service accepted, since start", registry=r
        ).set_function(lambda: push.sent)
        Gauge(
            "keystead_push_failed", "Pushes refused or not delivered, since start", registry=r
        ).set_function(lambda: push.failed)
        Gauge("keystead_push_pending", "Wake-ups queued to send", registry=r).set_function(
            lambda: push.pending
        )

    def render(self) -> bytes:
        return bytes(generate_latest(self.registry))


class AccessLog:
    """ASGI middleware: counts, times and logs every HTTP request by its route template."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics
        # the labelled children, looked up once (``labels()`` costs more than ``inc()``)
        self._counters: dict[tuple[str, str, int], Any] = {}
        self._timers: dict[str, Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def sending(msg: Message) -> None:
            nonlocal status
            if msg["type"] == "http.response.start":
                status = msg["status"]
            await send(msg)

        try:
            await self.app(scope, receive, sending)
        finally:
            took = time.perf_counter() - start
            route = getattr(scope.get("route"), "path", "unmatched")
            key = (scope["method"], route, status)
            counter = self._counters.get(key)
            if counter is None:
                counter = self._counters[key] = self.metrics.requests.labels(
                    key[0], route, str(status)
                )
            counter.inc()
            timer = self._timers.get(route)
            if timer is None:
                timer = self._timers[route] = self.metrics.latency.labels(route)
            timer.observe(took)
            if access_log.isEnabledFor(logging.INFO):
                client = scope.get("client") or ("", 0)
                access_log.info(
                    json.dumps(
                        {
                            "t": round(time.time(), 3),
                            "client": client[0],
                            "method": scope["method"],
                            "path": scope["path"],
                            "route": route,
                            "status": status,
                            "ms": round(took * 1000, 2),
                        },
                        separators=(",", ":"),
                    )
                )
