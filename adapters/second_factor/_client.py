"""The asking side: send a sealed prompt through the service and verify the answer.

:class:`RelyingPartyClient` is a relying party with a token (``keystead confirm
request``); :func:`request_confirmation` is a device asking for its own account
(the SSH agent's ``--confirm``). Both seal the prompt to the ``confirm`` key of a
chain they verified themselves, and verify the answer against a chain fetched
*after* the answer arrived, so a device removed meanwhile is refused. A relying
party verifies that chain against its pin (or the fingerprint it was given), so a
service cannot make up the account and answer for it.
"""

from __future__ import annotations

import os
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from keystead.core import ChainState, b64d, b64e, seal_to_key
from keystead.core.client import ServiceClient, path
from keystead.core.device import fetch_chain
from keystead.core.errors import (
    Conflict,
    VerificationError,
)

from ._confirm_protocol import Decision, RelyingParty, VerifiedAnswer
from ._pins import PinMismatch, PinStore, check_service_url
from ._prompt import VERSION, Prompt
from ._wire import CHANNEL, device_rp_name, rp_of_token

if TYPE_CHECKING:
    import httpx
    from keystead.core import Device
    from keystead.core.capabilities import AdapterCapabilities

__all__ = ["Outcome", "PendingRequest", "RelyingPartyClient", "request_confirmation"]

POLL_SLICE = 25  # seconds per long-poll request (the service allows up to 60)
SEALING_CHAIN_TTL = 60


@dataclass(frozen=True)
class PendingRequest:
    """A prompt the service holds; show ``number`` (if any) on the RP's own screen."""

    prompt: Prompt
    prompt_bytes: bytes

    @property
    def request_id(self) -> str:
        return self.prompt.request_id

    @property
    def number(self) -> int | None:
        return self.prompt.number


@dataclass(frozen=True)
class Outcome:
    """How a request ended. Only ``approved`` means a verified approval."""

    status: str  # "approved", "denied", "reported" (denied as "not me") or "expired"
    answer: VerifiedAnswer | None = None

    @property
    def approved(self) -> bool:
        return self.status == "approved"

    @property
    def reported(self) -> bool:
        return self.status == "reported"


class _Asker(ABC):
    """What both askers share; subclasses say how to authenticate and fetch the chain."""

    name: str
    clock: Callable[[], float]

    def __init__(self) -> None:
        self._used: set[str] = set()
        self._sealing: tuple[float, ChainState] | None = None

    @abstractmethod
    def _chain(self) -> ChainState:
        """The account's verified chain, fetched now."""

    def _sealing_chain(self, *, fresh: bool = False) -> ChainState:
        """The chain to seal to: refetched once a minute at most, or at once when the service
        said the prompt was sealed to an epoch that is no longer current (a device was
        removed meanwhile); :meth:`verify` always refetches for liveness."""
        now = self.clock()
        if fresh or self._sealing is None or now - self._sealing[0] > SEALING_CHAIN_TTL:
            self._sealing = (now, self._chain())
        return self._sealing[1]

    @abstractmethod
    def _request(
        self,
        method: str,
        url_path: str,
        body: Any = None,
        params: dict[str, Any] | None = None,
        timeout: float | None = None,
    ) -> Any:
        """One authenticated request to the confirm routes."""

    def start(
        self, message: str, *, lifetime: int = 120, number_matching: bool = True
    ) -> PendingRequest:
        """Seal a fresh prompt to the account's ``confirm`` key and hand it to the service."""
        prompt = RelyingParty(self.name, lifetime, number_matching).create_prompt(
            message, int(self.clock())
        )
        prompt_bytes = prompt.to_bytes()
        for fresh in (False, True):
            sealed = seal_to_key(self._sealing_chain(fresh=fresh), CHANNEL, prompt_bytes)
            try:
                self._request(
                    "POST",
                    self._url("requests"),
                    {
                        "v": VERSION,
                        "id": prompt.request_id,
                        "expires": prompt.expires,
                        "sealed": b64e(sealed),
                    },
                )
                break
            except Conflict as e:
                if fresh or "epoch" not in str(e):
                    raise
        return PendingRequest(prompt, prompt_bytes)

    def wait(self, pending: PendingRequest, timeout: float | None = None) -> Outcome:
        """Wait for the answer until the prompt expires (or ``timeout``), then verify it.

        An answer that does not verify raises an ``AnswerRejected`` (or
        ``InvalidSignature``); it is never taken for a denial silently."""
        deadline = (
            pending.prompt.expires
            if timeout is None
            else min(pending.prompt.expires, self.clock() + timeout)
        )
        answer: bytes | None = None
        while answer is None:
            left = deadline - self.clock()
            if left <= 0:
                return Outcome("expired")
            wait = min(left, POLL_SLICE)
            resp = self._request(
                "GET",
                self._url("requests", pending.request_id, "answer"),
                params={"wait": f"{wait:.3f}"},
                timeout=wait + 30,
            )
            raw = resp.get("answer") if isinstance(resp, dict) else None
            answer = None if raw is None else b64d(raw, what="answer")
        return self.verify(pending, answer)

    def verify(self, pending: PendingRequest, answer: bytes) -> Outcome:
        """Check an answer against the account's devices live *now* with the confirm scope."""
        chain = self._chain()
        live = {d.id: d.signing_key for d in chain.live_devices if CHANNEL in d.scopes}
        result = RelyingParty(self.name).verify(
            answer, pending.prompt_bytes, int(self.clock()), live, self._used
        )
        status = {
            Decision.APPROVE: "approved",
            Decision.DENY: "denied",
            Decision.REPORT: "reported",
        }[result.decision]
        return Outcome(status, result)

    def request(
        self,
        message: str,
        *,
        lifetime: int = 120,
        number_matching: bool = True,
        show_number: Callable[[int], None] | None = None,
    ) -> Outcome:
        """:meth:`start`, show the number (if any) through ``show_number``, :meth:`wait`."""
        pending = self.start(message, lifetime=lifetime, number_matching=number_matching)
        if pending.number is not None and show_number is not None:
            show_number(pending.number)
        return self.wait(pending)

    @abstractmethod
    def _url(self, *parts: str) -> str:
        """The path of a confirm route for this account."""


class RelyingPartyClient(_Asker):
    """A relying party: asks account ``account`` at ``server`` with an RP ``token``.

    The account must be pinned: ``pins`` is a folder of pins (one per service and
    account, made on first use, see :mod:`._pins`), ``fingerprint`` the account key
    as ``keystead account show`` prints it; give one or both. A chain that does not
    continue the pin, or whose key is not ``fingerprint``, raises :class:`PinMismatch`
    before anything is sent or believed. ``server`` must be https, or http to a
    loopback address, unless ``insecure_http``."""

    def __init__(
        self,
        server: str,
        account: str,
        token: str,
        *,
        pins: str | os.PathLike[str] | None = None,
        fingerprint: str | None = None,
        insecure_http: bool = False,
        clock: Callable[[], float] = time.time,
        transport: httpx.BaseTransport | None = None,
    ) -> None:

        super().__init__()
        if pins is None and not fingerprint:
            raise ValueError(
                "a relying party must pin the account: pass pins (a folder) or fingerprint"
            )
        check_service_url(server, insecure_http=insecure_http)
        self.server, self.account, self.clock = server.rstrip("/"), account, clock
        self.name = rp_of_token(token)
        self.fingerprint = fingerprint.strip() if fingerprint else None
        self.pins = None if pins is None else PinStore(pins, clock)
        self._service = ServiceClient(self.server, transport=transport, clock=clock)
        self._auth = {"authorization": f"Bearer {token.strip()}"}
        self._state: ChainState | None = None
        self._cached: list[Any] = []

    def close(self) -> None:
        self._service.close()

    def __enter__(self) -> RelyingPartyClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _url(self, *parts: str) -> str:
        return path("confirm", self.account, *parts)

    def _chain(self) -> ChainState:
        # Within this client the entries verified before are kept and only extended; the
        # pin (or fingerprint) says whether the first chain is the account's at all.
        try:
            state, entries = fetch_chain(
                self._service, self.account, cached=self._cached, base=self._state
            )
        except VerificationError as e:
            if self._state is None:
                raise
            raise PinMismatch(
                f"the chain of {self.account} at {self.server} no longer "
                f"continues the one verified before ({e})"
            ) from e
        key = state.account_key.fingerprint
        if self.fingerprint is not None and key != self.fingerprint:
            raise PinMismatch(
                f"the account key of {self.account} at {self.server} is {key}, "
                f"not the fingerprint given ({self.fingerprint})"
            )
        if self.pins is not None:
            self.pins.check(self.server, state)
        self._state, self._cached = state, entries
        return state

    def _request(
        self,
        method: str,
        url_path: str,
        body: Any = None,
        params: dict[str, Any] | None = None,
        timeout: float | None = None,
    ) -> Any:
        # An RP is no device: its token authenticates it instead of a request signature.
        return self._service.request(
            method,
            url_path,
            body=body,
            params=params,
            timeout=timeout,
            signed=False,
            headers=self._auth,
        )


class _DeviceAsker(_Asker):
    """A device asking its own account, through its adapter capabilities only."""

    def __init__(self, caps: AdapterCapabilities) -> None:
        super().__init__()
        self.caps, self.clock = caps, caps.clock
        self.name = device_rp_name(caps.device_name)

    def _url(self, *parts: str) -> str:
        return path("confirm", self.caps.account, *parts)

    def _chain(self) -> ChainState:
        return self.caps.chain()

    def _request(
        self,
        method: str,
        url_path: str,
        body: Any = None,
        params: dict[str, Any] | None = None,
        timeout: float | None = None,
    ) -> Any:
        return self.caps.routes().request(
            method, *url_path.strip("/").split("/"), body=body, params=params, timeout=timeout
        )


def request_confirmation(
    device: Device,
    message: str,
    *,
    wait: int = 60,
    number_matching: bool = True,
    show_number: Callable[[int], None] | None = None,
) -> bool:
    """Ask the account's devices (those with the ``confirm`` scope) to approve ``message``;
    True only for a verified approval within ``wait`` seconds. The prompt's RP name is
    ``device:NAME`` of the asking device. An answer that fails verification is False."""
    from keystead.core.capabilities import capabilities_for

    from . import adapter

    return _ask(
        _DeviceAsker(capabilities_for(device, adapter)),
        message,
        wait=wait,
        number_matching=number_matching,
        show_number=show_number,
    )


def _ask(
    asker: _DeviceAsker,
    message: str,
    *,
    wait: int,
    number_matching: bool,
    show_number: Callable[[int], None] | None,
) -> bool:
    try:
        return asker.request(
            message, lifetime=wait, number_matching=number_matching, show_number=show_number
        ).approved
    except VerificationError:
        return False


class DeviceConfirmer:
    """The :class:`~keystead.core.capabilities.Confirmer` this adapter provides to others
    (ssh's ``--confirm``): a device asking its own account, number matching on."""

    def __init__(self, caps: AdapterCapabilities) -> None:
        self._caps = caps

    def confirm(
        self,
        message: str,
        *,
        wait: int = 60,
        number_matching: bool = True,
        show_number: Callable[[int], None] | None = None,
    ) -> bool:
        return _ask(
            _DeviceAsker(self._caps),
            message,
            wait=wait,
            number_matching=number_matching,
            show_number=show_number,
        )
