"""Keystead second_factor adapter: TOTP/HOTP codes and signed confirmation prompts.

The public names below are what the wiring step calls; the local web page
lives in :mod:`keystead.adapters.second_factor.ui` (imported on demand, since
it pulls in the web server).
"""

from ._confirm_protocol import (
    PURPOSE_ANSWER,
    AnswerRejected,
    AnswerReplayed,
    Decision,
    DeviceNotLive,
    InvalidChoice,
    Prompt,
    RelyingParty,
    RequestExpired,
    VerifiedAnswer,
    WrongNumber,
    WrongRelyingParty,
    WrongRequest,
    answer_prompt,
    verify_answer,
)
from ._otpauth import OtpAuth, OtpAuthError, decode_secret, encode_secret
from ._qr import qr_matrix, render_qr
from ._source import InMemoryPromptSource, PendingPrompt, PromptSource
from ._totp import (
    CodeRejected,
    CodeReplayed,
    TotpVerifier,
    code_at,
    hotp,
    time_step,
    totp,
    verify_totp,
)
from ._totp_items import (
    AmbiguousName,
    credential_from_item,
    credential_to_item,
    find_credential,
    take_code,
)

__all__ = [
    "PURPOSE_ANSWER",
    "AmbiguousName",
    "AnswerRejected",
    "AnswerReplayed",
    "CodeRejected",
    "CodeReplayed",
    "Decision",
    "DeviceNotLive",
    "InMemoryPromptSource",
    "InvalidChoice",
    "OtpAuth",
    "OtpAuthError",
    "PendingPrompt",
    "Prompt",
    "PromptSource",
    "RelyingParty",
    "RequestExpired",
    "TotpVerifier",
    "VerifiedAnswer",
    "WrongNumber",
    "WrongRelyingParty",
    "WrongRequest",
    "answer_prompt",
    "code_at",
    "credential_from_item",
    "credential_to_item",
    "decode_secret",
    "encode_secret",
    "find_credential",
    "hotp",
    "qr_matrix",
    "render_qr",
    "take_code",
    "time_step",
    "totp",
    "verify_answer",
    "verify_totp",
]
