"""Pin the public surface the wiring step calls (httpx's test_exported_members)."""

import keystead.adapters.second_factor as second_factor
from keystead.adapters.second_factor import ui

EXPECTED = {
    "PURPOSE_ANSWER", "AmbiguousName", "AnswerRejected", "AnswerReplayed", "CodeRejected",
    "CodeReplayed", "Decision", "DeviceNotLive", "InMemoryPromptSource", "InvalidChoice",
    "OtpAuth", "OtpAuthError", "PendingPrompt", "Prompt", "PromptSource", "RelyingParty",
    "RequestExpired", "TotpVerifier", "VerifiedAnswer", "WrongNumber", "WrongRelyingParty",
    "WrongRequest", "answer_prompt", "code_at", "credential_from_item", "credential_to_item",
    "decode_secret", "encode_secret", "find_credential", "hotp", "qr_matrix", "render_qr",
    "take_code", "time_step", "totp", "verify_answer", "verify_totp",
}  # fmt: skip


def test_exported_members():
    assert set(second_factor.__all__) == EXPECTED
    assert len(second_factor.__all__) == len(EXPECTED)
    for name in EXPECTED - {"PURPOSE_ANSWER"}:
        assert getattr(second_factor, name).__module__.startswith("keystead.adapters.")


def test_ui_module_members():
    assert set(ui.__all__) == {"UiServer", "create_app"}


def test_no_adapter_object_yet():
    """The wiring step writes ``adapter``; this layer must not pre-empt it."""
    assert not hasattr(second_factor, "adapter")


def test_purpose_label():
    assert second_factor.PURPOSE_ANSWER == "keystead/v1/confirm/answer"
