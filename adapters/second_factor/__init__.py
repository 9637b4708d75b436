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

__all__ = [
    "PURPOSE_ANSWER",
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
    "decode_secret",
    "encode_secret",
    "hotp",
    "qr_matrix",
    "render_qr",
    "time_step",
    "totp",
    "verify_answer",
    "verify_totp",
]
