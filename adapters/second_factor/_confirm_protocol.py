"""Confirmation prompts and signed answers: the protocol, with no I/O.

A relying party (RP) creates a :class:`Prompt`; the wiring encrypts its bytes
to the account's ``confirm`` collection, so the service never reads it. A
device answers with :func:`answer_prompt`: a core signed envelope
(:class:`keystead.core.envelope.SignedEnvelope`, purpose :data:`PURPOSE_ANSWER`,
signer its device id) whose body names the request id, the digest of the
*exact* prompt bytes, the RP name, the decision, the number picked, the time
and the device id. An answer of format 1 (the adapter's own signed object
before the envelope) is refused with :data:`OLD_ANSWER_FORMAT`. The RP calls
:func:`verify_answer` with its own copy of the prompt and the keys of the devices
live *now*, so a removed device's answer fails even when its signature is good.
Formats: docs/second_factor.md.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Mapping, MutableSet
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from keystead.core import b64d, b64e, canonical_json, parse_json_object
from keystead.core.crypto import SigningKey, VerifyKey
from keystead.core.envelope import SignedEnvelope
from keystead.core.errors import FormatError, UnsupportedVersion, VerificationError

from ._prompt import (
    MAX_CHOICES,
    MAX_LIFETIME,
    MAX_RP_CHARS,
    MIN_CHOICES,
    NUMBERS,
    REQUEST_ID_BYTES,
    Prompt,
    check_int,
    check_text,
)

__all__ = [
    "ANSWER_TYPE",
    "PURPOSE_ANSWER",
    "AnswerRejected",
    "AnswerReplayed",
    "Decision",
    "DeviceNotLive",
    "InvalidChoice",
    "Prompt",
    "RelyingParty",
    "RequestExpired",
    "VerifiedAnswer",
    "WrongNumber",
    "WrongRelyingParty",
    "WrongRequest",
    "answer_prompt",
    "verify_answer",
]

PURPOSE_ANSWER = "keystead/v2/confirm/answer"
ANSWER_TYPE = "keystead/v2/confirm/answer-body"
ANSWER_VERSION = 2
MAX_DEVICE_ID_CHARS = 200
MAX_ANSWER_BYTES = 4096
_ANSWER_KEYS = {"v", "type", "id", "prompt", "rp", "decision", "number", "at", "device"}
_OLD_ANSWER_KEYS = {"v", "device", "body", "sig"}
OLD_ANSWER_FORMAT = (
    "confirmation answer of format 1, which this Keystead no longer reads: the answering "
    "device must upgrade Keystead and answer again"
)


class InvalidChoice(FormatError):
    """The number given is not one the prompt offers."""


class AnswerRejected(VerificationError):
    """A signed answer is not valid for this request, now, from a live device."""


class DeviceNotLive(AnswerRejected):
    """The answering device is unknown, removed, or lacks the confirm scope."""


class WrongRequest(AnswerRejected):
    """The answer was made for another prompt (other request id or other prompt bytes)."""


class WrongRelyingParty(AnswerRejected):
    """The answer or prompt belongs to another relying party."""


class RequestExpired(AnswerRejected):
    """The request expired before the answer was checked."""


class WrongNumber(AnswerRejected):
    """Number matching failed: the person picked a number the RP did not show."""


class AnswerReplayed(AnswerRejected):
    """This request was already answered once."""


class Decision(StrEnum):
    """What the person chose. REPORT is a denial that also flags the attempt as not theirs."""

    APPROVE = "approve"
    DENY = "deny"
    REPORT = "deny-report"


@dataclass(frozen=True)
class VerifiedAnswer:
    """What :func:`verify_answer` vouches for: this device decided this, for this request."""

    request_id: str
    decision: Decision
    device_id: str
    number: int | None
    answered_at: int


def answer_prompt(
    prompt_bytes: bytes,
    decision: Decision,
    number: int | None,
    *,
    device_id: str,
    signing_key: SigningKey,
    now: int,
) -> bytes:
    """Sign this device's answer to a prompt. ``number`` is the choice picked, for APPROVE only."""
    prompt = Prompt.from_bytes(prompt_bytes)
    decision = Decision(decision)
    check_text("the device id", device_id, MAX_DEVICE_ID_CHARS, newlines=False)
    if now >= prompt.expires:
        raise RequestExpired("the request has expired")
    if decision is not Decision.APPROVE:
        if number is not None:
            raise ValueError("only an approval carries a number")
    elif prompt.number is None:
        if number is not None:
            raise InvalidChoice("this prompt has no number to match")
    elif number not in prompt.choices:
        raise InvalidChoice("pick one of the numbers offered")
    body = canonical_json(
        {
            "v": ANSWER_VERSION,
            "type": ANSWER_TYPE,
            "id": prompt.request_id,
            "prompt": b64e(hashlib.sha256(prompt_bytes).digest()),
            "rp": prompt.rp,
            "decision": decision.value,
            "number": number,
            "at": check_int("now", now),
            "device": device_id,
        }
    )
    signed = SignedEnvelope.sign(signing_key, purpose=PURPOSE_ANSWER, signer=device_id, body=body)
    return signed.to_bytes()


def parse_answer(answer_bytes: bytes) -> SignedEnvelope:
    """Parse an answer's envelope strictly (canonical, bounded); nothing is verified yet.
    Its ``signer`` is the answering device id: the key to verify with. An answer of
    format 1 is refused with :data:`OLD_ANSWER_FORMAT`."""
    if not isinstance(answer_bytes, bytes | bytearray):
        raise TypeError("expected bytes")
    if len(answer_bytes) > MAX_ANSWER_BYTES:
        raise FormatError("answer: too large")
    answer_bytes = bytes(answer_bytes)
    outer = parse_json_object(answer_bytes, what="answer")
    if set(outer) == _OLD_ANSWER_KEYS and outer.get("v") == 1:
        raise UnsupportedVersion(OLD_ANSWER_FORMAT)
    signed = SignedEnvelope.from_bytes(answer_bytes, purpose=PURPOSE_ANSWER)
    if signed.to_bytes() != answer_bytes:
        raise FormatError("answer: not in canonical form")
    return signed


def open_answer(signed: SignedEnvelope, key: VerifyKey) -> dict[str, Any]:
    """Verify the envelope with the signer's key, then parse its body strictly: canonical,
    version :data:`ANSWER_VERSION`, exact fields, naming the same device as the envelope."""
    body_bytes = signed.verify(key)
    if len(body_bytes) > MAX_ANSWER_BYTES:
        raise FormatError("answer body: too large")
    body = parse_json_object(body_bytes, what="answer body")
    if canonical_json(body) != body_bytes:
        raise FormatError("answer body: not in canonical form")
    if body.get("v") != ANSWER_VERSION:
        raise UnsupportedVersion(
            f"answer body of version {body.get('v')!r}; this Keystead reads version "
            f"{ANSWER_VERSION}"
        )
    if set(body) != _ANSWER_KEYS or body.get("type") != ANSWER_TYPE:
        raise FormatError("answer body: unexpected fields")
    if body["device"] != signed.signer:
        raise FormatError("the answer names two devices")
    return body


UsedRequests = MutableSet[str] | Callable[[str], bool]


def _claim(already_used: UsedRequests, request_id: str) -> bool:
    if isinstance(already_used, MutableSet):
        if request_id in already_used:
            return False
        already_used.add(request_id)
        return True
    return bool(already_used(request_id))


def verify_answer(
    answer_bytes: bytes,
    prompt_bytes: bytes,
    rp_name: str,
    now: int,
    device_keys: Mapping[str, VerifyKey],
    already_used: UsedRequests,
) -> VerifiedAnswer:
    """Check a device's answer to *this* prompt of *this* RP, once, before expiry.

    ``device_keys`` holds only devices live now with the confirm scope.
    ``already_used`` is a set of answered request ids (checked, then added to)
    or a callable ``claim(request_id) -> bool`` that returns True exactly once
    per id (an atomic insert in the caller's store). It is consulted last, so
    a rejected answer does not burn the request.
    """
    signed = parse_answer(answer_bytes)
    device_id = signed.signer
    if device_id not in device_keys:
        raise DeviceNotLive("the answering device is not live with the confirm scope")
    body = open_answer(signed, device_keys[device_id])
    prompt = Prompt.from_bytes(prompt_bytes)
    digest = hashlib.sha256(prompt_bytes).digest()
    signed_digest = b64d(body["prompt"], size=32, what="prompt digest")
    if body["id"] != prompt.request_id or signed_digest != digest:
        raise WrongRequest("the answer is for another request")
    if not (rp_name == prompt.rp == body["rp"]):
        raise WrongRelyingParty("the answer is for another relying party")
    if now >= prompt.expires:
        raise RequestExpired("the request has expired")
    try:
        decision = Decision(body["decision"])
    except ValueError as e:
        raise FormatError("unknown decision") from e
    number = body["number"]
    if decision is Decision.APPROVE and number != prompt.number:
        raise WrongNumber("the number picked is not the one shown")
    if decision is not Decision.APPROVE and number is not None:
        raise FormatError("only an approval carries a number")
    answered_at = check_int("at", body["at"])
    if not _claim(already_used, prompt.request_id):
        raise AnswerReplayed("this request was already answered")
    return VerifiedAnswer(prompt.request_id, decision, device_id, number, answered_at)


@dataclass(frozen=True)
class RelyingParty:
    """The RP side: make prompts under one name and verify their answers."""

    name: str
    lifetime: int = 120
    number_matching: bool = True
    choices: int = MIN_CHOICES

    def __post_init__(self) -> None:
        check_text("the relying party name", self.name, MAX_RP_CHARS, newlines=False)
        if not 0 < self.lifetime <= MAX_LIFETIME:
            raise ValueError(f"lifetime must be 1 to {MAX_LIFETIME} seconds")
        if not MIN_CHOICES <= self.choices <= MAX_CHOICES:
            raise ValueError(f"choices must be {MIN_CHOICES} to {MAX_CHOICES}")

    def create_prompt(self, message: str, now: int, *, rng: random.Random | None = None) -> Prompt:
        """A fresh prompt; show ``prompt.number`` to the person on the RP's own screen."""
        rng = rng or random.SystemRandom()
        number: int | None = None
        choices: tuple[int, ...] = ()
        if self.number_matching:
            choices = tuple(rng.sample(NUMBERS, self.choices))
            number = rng.choice(choices)
        return Prompt(
            request_id=rng.randbytes(REQUEST_ID_BYTES).hex(),
            rp=self.name,
            message=message,
            created=now,
            expires=now + self.lifetime,
            number=number,
            choices=choices,
        )

    def verify(
        self,
        answer_bytes: bytes,
        prompt_bytes: bytes,
        now: int,
        device_keys: Mapping[str, VerifyKey],
        already_used: UsedRequests,
    ) -> VerifiedAnswer:
        """:func:`verify_answer` under this RP's name."""
        return verify_answer(answer_bytes, prompt_bytes, self.name, now, device_keys, already_used)
