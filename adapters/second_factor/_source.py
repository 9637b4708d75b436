"""What the confirmation UI needs from the rest of Keystead, and an in-memory version.

The UI never sees the core: it lists, approves and denies through
:class:`PromptSource`. The wiring step implements it over the account spool;
:class:`InMemoryPromptSource` is the same interface with a local list, used by
tests and demos, and shows what a real source must do (sign with
:func:`answer_prompt`, drop the prompt once answered).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from keystead.core.crypto import SigningKey
from keystead.core.errors import NotFound

from ._confirm_protocol import Decision, answer_prompt
from ._prompt import Prompt

__all__ = ["InMemoryPromptSource", "PendingPrompt", "PromptSource"]


@dataclass(frozen=True)
class PendingPrompt:
    """A prompt as the person sees it. It has no ``number``: the person must read it
    off the RP's screen, and choices come sorted so their order cannot give it away."""

    request_id: str
    rp: str
    message: str
    created: int
    expires: int
    choices: tuple[int, ...]

    @classmethod
    def from_prompt(cls, prompt: Prompt) -> PendingPrompt:
        """Drop what the person must not be shown."""
        return cls(
            prompt.request_id,
            prompt.rp,
            prompt.message,
            prompt.created,
            prompt.expires,
            tuple(sorted(prompt.choices)),
        )


@runtime_checkable
class PromptSource(Protocol):
    """Pending prompts for this device, and a way to answer them.

    ``approve``/``deny`` raise ``NotFound`` for an unknown or already answered
    id and other ``KeysteadError`` subclasses for bad input (a number not offered,
    an expired request); the UI turns them into 4xx answers.
    """

    def list_pending(self) -> Sequence[PendingPrompt]:
        """Prompts waiting for an answer, oldest first."""
        ...

    def approve(self, request_id: str, number: int | None) -> None:
        """Sign and send an approval with the number the person picked."""
        ...

    def deny(self, request_id: str, report: bool) -> None:
        """Sign and send a denial; ``report`` marks the request as not made by the person."""
        ...


@dataclass
class InMemoryPromptSource:
    """A :class:`PromptSource` over prompt bytes held in memory; answers land in ``answers``."""

    device_id: str
    signing_key: SigningKey
    clock: Callable[[], float] = time.time
    _prompts: dict[str, bytes] = field(default_factory=dict, repr=False)
    answers: dict[str, bytes] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, prompt_bytes: bytes) -> PendingPrompt:
        """Receive a prompt (as the spool would deliver it, decrypted)."""
        prompt = Prompt.from_bytes(prompt_bytes)
        with self._lock:
            self._prompts[prompt.request_id] = prompt_bytes
        return PendingPrompt.from_prompt(prompt)

    def list_pending(self) -> Sequence[PendingPrompt]:
        with self._lock:
            prompts = [Prompt.from_bytes(b) for b in self._prompts.values()]
        return [PendingPrompt.from_prompt(p) for p in sorted(prompts, key=lambda p: p.created)]

    def _answer(self, request_id: str, decision: Decision, number: int | None) -> None:
        with self._lock:
            prompt_bytes = self._prompts.get(request_id)
            if prompt_bytes is None:
                raise NotFound("no such pending prompt")
            answer = answer_prompt(
                prompt_bytes,
                decision,
                number,
                device_id=self.device_id,
                signing_key=self.signing_key,
                now=int(self.clock()),
            )
            del self._prompts[request_id]
            self.answers[request_id] = answer

    def approve(self, request_id: str, number: int | None) -> None:
        self._answer(request_id, Decision.APPROVE, number)

    def deny(self, request_id: str, report: bool) -> None:
        self._answer(request_id, Decision.REPORT if report else Decision.DENY, None)
