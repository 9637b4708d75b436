"""Keystead second_factor adapter: TOTP/HOTP codes and signed confirmation prompts.

Importing this package is cheap (the CLI imports it for every command, to learn
``adapter.commands``): the public names below load their modules on first use,
and the local web page lives in :mod:`keystead.adapters.second_factor.ui`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from keystead.core.lazy import lazy_exports

if TYPE_CHECKING:
    import click
    from fastapi import APIRouter
    from keystead.core.service import ServiceContext

_EXPORTS = {
    "Outcome": "._client",
    "PendingRequest": "._client",
    "RelyingPartyClient": "._client",
    "request_confirmation": "._client",
    "AnswerRejected": "._confirm_protocol",
    "AnswerReplayed": "._confirm_protocol",
    "Decision": "._confirm_protocol",
    "DeviceNotLive": "._confirm_protocol",
    "InvalidChoice": "._confirm_protocol",
    "PURPOSE_ANSWER": "._confirm_protocol",
    "Prompt": "._confirm_protocol",
    "RelyingParty": "._confirm_protocol",
    "RequestExpired": "._confirm_protocol",
    "VerifiedAnswer": "._confirm_protocol",
    "WrongNumber": "._confirm_protocol",
    "WrongRelyingParty": "._confirm_protocol",
    "WrongRequest": "._confirm_protocol",
    "answer_prompt": "._confirm_protocol",
    "verify_answer": "._confirm_protocol",
    "OtpAuth": "._otpauth",
    "OtpAuthError": "._otpauth",
    "decode_secret": "._otpauth",
    "encode_secret": "._otpauth",
    "DevicePromptSource": "._phone",
    "PinMismatch": "._pins",
    "qr_matrix": "._qr",
    "render_qr": "._qr",
    "InMemoryPromptSource": "._source",
    "PendingPrompt": "._source",
    "PromptSource": "._source",
    "CodeRejected": "._totp",
    "CodeReplayed": "._totp",
    "TotpVerifier": "._totp",
    "code_at": "._totp",
    "hotp": "._totp",
    "time_step": "._totp",
    "totp": "._totp",
    "verify_totp": "._totp",
    "AmbiguousName": "._totp_items",
    "credential_from_item": "._totp_items",
    "credential_to_item": "._totp_items",
    "find_credential": "._totp_items",
    "take_code": "._totp_items",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)


class _Adapter:
    """Confirmation prompts (``confirm``) and one-time codes (``totp``)."""

    name = "second_factor"
    collections = ("confirm", "totp")
    commands = ("confirm", "totp")
    quick_commands = (("totp", "code"),)  # the unlock agent answers these (see core.unlock)

    def cli_groups(self) -> Mapping[str, click.Command]:
        from ._cli_confirm import confirm
        from ._cli_totp import totp

        return {"confirm": confirm, "totp": totp}

    def router(self, ctx: ServiceContext) -> APIRouter | None:
        from ._service import confirm_router

        return confirm_router(ctx)


adapter = _Adapter()
