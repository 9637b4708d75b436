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
    "DevicePromptSource", "Outcome", "PendingRequest", "RelyingPartyClient",
    "request_confirmation", "PinMismatch",
}  # fmt: skip


def test_exported_members():
    assert set(second_factor.__all__) == EXPECTED
    assert len(second_factor.__all__) == len(EXPECTED)
    for name in EXPECTED - {"PURPOSE_ANSWER"}:
        assert getattr(second_factor, name).__module__.startswith("keystead.adapters.")


def test_ui_module_members():
    assert set(ui.__all__) == {"UiServer", "create_app"}


def test_adapter_object():
    from keystead.core import Adapter, discover

    adapter = second_factor.adapter
    assert isinstance(adapter, Adapter)
    assert adapter.name == "second_factor"
    assert adapter.collections == ("confirm", "totp")
    assert adapter.commands == ("confirm", "totp")
    assert set(adapter.cli_groups()) == {"confirm", "totp"}
    assert discover()["second_factor"] is adapter


def test_importing_the_package_is_light():
    """The CLI imports every adapter to learn its commands: no pyotp, segno or web server."""
    import subprocess
    import sys

    code = (
        "import sys, keystead.adapters.second_factor as s; s.adapter.commands; "
        "print(sorted(m for m in ('pyotp', 'segno', 'fastapi', 'uvicorn', 'httpx') "
        "if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_purpose_label():
    assert second_factor.PURPOSE_ANSWER == "keystead/v2/confirm/answer"
