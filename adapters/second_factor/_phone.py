"""The answering side: a :class:`PromptSource` over the account's ``confirm`` spool.

Prompts are read through ``GET /v1/confirm/{account}/prompts``, the spool channel
without the prompts already answered (by any device), long-polled.

Prompts arrive sealed to the ``confirm`` key; this device opens them through
its grant (one re-encryption batch per fetch, and each prompt once), checks
that the inside agrees with the envelope the service wrote (same request id,
RP and expiry: an RP cannot put words in another RP's mouth), and signs its
answers with the device signing key.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from keystead.core import b64d, b64e, open_sealed_to_key
from keystead.core.errors import Forbidden, FormatError, KeysteadError, NetworkError, NotFound
from keystead.core.text import printable

from ._confirm_protocol import Decision, answer_prompt
from ._prompt import Prompt
from ._source import PendingPrompt
from ._wire import CHANNEL, Envelope

if TYPE_CHECKING:
    from keystead.core import ChainState, Device

__all__ = ["DevicePromptSource", "Received"]


@dataclass(frozen=True)
class Received:
    """A prompt this device opened: its exact bytes (what the answer's digest covers)."""

    spool_id: int
    prompt: Prompt
    prompt_bytes: bytes

    @property
    def pending(self) -> PendingPrompt:
        return PendingPrompt.from_prompt(self.prompt)


class DevicePromptSource:
    """Pending prompts for this device's account, answered with this device's key.

    Thread-safe (the local UI calls it from a thread pool); a ``Device`` is not,
    so every use of it goes through one lock."""

    def __init__(self, device: Device) -> None:
        from keystead.core.capabilities import capabilities_for

        from . import adapter

        self.device = device
        self._routes = capabilities_for(device, adapter).routes()
        self._lock = threading.RLock()
        self._known: dict[int, Received | None] = {}  # spool id -> prompt (None: refused)
        self._cursor = 0

    # ------------------------------------------------------------- receiving
    def _fetch(self, after: int, wait: float) -> list[Received]:
        route = ("confirm", self.device.account, "prompts")
        params = {"after": after, "wait": f"{wait:.3f}"}
        try:
            resp = self._routes.request("GET", *route, params=params, timeout=wait + 30)
        except NetworkError:  # an idle keep-alive connection the service closed: retry once
            resp = self._routes.request("GET", *route, params=params, timeout=wait + 30)
        messages = [
            m
            for m in resp["prompts"]
            if isinstance(m, dict)
            and isinstance(m.get("id"), int)
            and not isinstance(m["id"], bool)
        ]
        self._cursor = max(self._cursor, int(resp["cursor"]))
        new = [m for m in messages if m["id"] not in self._known]
        self._open(new)
        return [r for m in messages if (r := self._known.get(m["id"])) is not None]

    def _open(self, messages: Sequence[dict[str, object]]) -> None:
        envelopes: list[tuple[int, Envelope]] = []
        for m in messages:
            try:
                envelopes.append(
                    (int(str(m["id"])), Envelope.from_bytes(b64d(m["body"], what="spool body")))
                )
            except KeysteadError:
                self._refuse(int(str(m["id"])), "a malformed confirmation prompt was skipped")
        if not envelopes:
            return
        state = self.device.chain(refresh=False)
        try:
            opened: list[bytes | None] = list(
                open_sealed_to_key(self.device, state, CHANNEL, [e.sealed for _, e in envelopes])
            )
        except (Forbidden, NetworkError):
            raise
        except KeysteadError:  # one bad row spoils a batch: open them one by one
            opened = [self._open_one(state, e.sealed) for _, e in envelopes]
        for (spool_id, env), prompt_bytes in zip(envelopes, opened, strict=True):
            try:
                if prompt_bytes is None:
                    raise FormatError("cannot be opened")
                prompt = Prompt.from_bytes(prompt_bytes)
            except KeysteadError:
                self._refuse(
                    spool_id, f"a malformed prompt from {printable(env.rp, 100)!r} was skipped"
                )
                continue
            if (prompt.request_id, prompt.rp, prompt.expires) != (
                env.request_id,
                env.rp,
                env.expires,
            ):
                self._refuse(
                    spool_id,
                    f"a prompt posted by {printable(env.rp, 100)!r} claims "
                    f"to come from {printable(prompt.rp, 100)!r}; ignored",
                )
                continue
            self._known[spool_id] = Received(spool_id, prompt, prompt_bytes)

    def _open_one(self, state: ChainState, sealed: bytes) -> bytes | None:
        try:
            [out] = open_sealed_to_key(self.device, state, CHANNEL, [sealed])
            return out
        except (Forbidden, NetworkError):
            raise
        except KeysteadError:
            return None

    def _refuse(self, spool_id: int, why: str) -> None:
        self._known[spool_id] = None
        print(f"keystead: {why}", file=sys.stderr)

    def received(self, wait: float = 0) -> list[Received]:
        """Every unanswered, unexpired prompt, oldest first (answered ones leave the spool)."""
        with self._lock:
            out = self._fetch(0, wait)
            live = {r.spool_id for r in out}
            for spool_id in [k for k, v in self._known.items() if v and k not in live]:
                del self._known[spool_id]
            now = int(self.device.clock())
            return [r for r in out if r.prompt.expires > now]

    def wait_new(self, wait: float) -> list[Received]:
        """Long-poll for prompts newer than any seen so far (``keystead confirm watch``)."""
        with self._lock:
            now = int(self.device.clock())
            return [r for r in self._fetch(self._cursor, wait) if r.prompt.expires > now]

    def list_pending(self) -> Sequence[PendingPrompt]:
        return [r.pending for r in self.received()]

    def find(self, request_id: str) -> Received:
        with self._lock:
            for r in self._known.values():
                if r is not None and r.prompt.request_id == request_id:
                    return r
            for r in self.received():
                if r.prompt.request_id == request_id:
                    return r
        raise NotFound(f"no pending confirmation request {request_id!r}")

    # ------------------------------------------------------------- answering
    def answer(self, request_id: str, decision: Decision, number: int | None) -> None:
        """Sign and send; ``Conflict`` if another device answered first."""
        with self._lock:
            received = self.find(request_id)
            dev = self.device
            answer = answer_prompt(
                received.prompt_bytes,
                decision,
                number,
                device_id=dev.device_id,
                signing_key=dev.keys.signing,
                now=int(dev.clock()),
            )
            try:
                self._routes.request(
                    "POST",
                    "confirm",
                    dev.account,
                    "requests",
                    request_id,
                    "answer",
                    body={"answer": b64e(answer)},
                )
            finally:
                self._known[received.spool_id] = None

    def approve(self, request_id: str, number: int | None) -> None:
        self.answer(request_id, Decision.APPROVE, number)

    def deny(self, request_id: str, report: bool) -> None:
        self.answer(request_id, Decision.REPORT if report else Decision.DENY, None)
