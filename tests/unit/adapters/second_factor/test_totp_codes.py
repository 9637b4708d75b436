"""Known-answer vectors (RFC 6238 Appendix B, RFC 4226 Appendix D) and the once-only verifier."""

import pytest
from keystead.adapters.second_factor import (
    CodeRejected,
    CodeReplayed,
    OtpAuth,
    TotpVerifier,
    code_at,
    hotp,
    time_step,
    totp,
    verify_totp,
)

SEEDS = {
    "SHA1": b"12345678901234567890",
    "SHA256": b"12345678901234567890123456789012",
    "SHA512": b"1234567890123456789012345678901234567890123456789012345678901234",
}
# RFC 6238 Appendix B: (time, SHA1, SHA256, SHA512), 8 digits, 30 s steps.
RFC6238 = [
    (59, "94287082", "46119246", "90693936"),
    (1111111109, "07081804", "68084774", "25091201"),
    (1111111111, "14050471", "67062674", "99943326"),
    (1234567890, "89005924", "91819424", "93441116"),
    (2000000000, "69279037", "90698825", "38618901"),
    (20000000000, "65353130", "77737706", "47863826"),
]
RFC4226 = ["755224", "287082", "359152", "969429", "338314",
           "254676", "287922", "162583", "399871", "520489"]  # fmt: skip


@pytest.mark.parametrize(("at", "sha1", "sha256", "sha512"), RFC6238)
def test_rfc6238_appendix_b(at, sha1, sha256, sha512):
    for algorithm, expected in (("SHA1", sha1), ("SHA256", sha256), ("SHA512", sha512)):
        assert totp(SEEDS[algorithm], at, digits=8, algorithm=algorithm) == expected


@pytest.mark.parametrize(("counter", "expected"), list(enumerate(RFC4226)))
def test_rfc4226_appendix_d(counter, expected):
    assert hotp(SEEDS["SHA1"], counter) == expected


def test_80_bit_secret_gives_codes():
    otp = OtpAuth.from_uri("otpauth://totp/a?secret=JBSWY3DPEHPK3PXP")
    code = code_at(otp, 1_700_000_000)
    assert len(code) == 6 and code.isdigit()


def test_code_at_uses_the_credential_parameters():
    otp = OtpAuth("totp", SEEDS["SHA256"], "a", algorithm="SHA256", digits=8)
    assert code_at(otp, 1111111109) == "68084774"
    hotp_cred = OtpAuth("hotp", SEEDS["SHA1"], "a", counter=7)
    assert code_at(hotp_cred, 0) == "162583"


def test_period_changes_the_step():
    assert time_step(59, 30) == 1 and time_step(59, 60) == 0
    assert totp(SEEDS["SHA1"], 119, period=60, digits=8) == totp(SEEDS["SHA1"], 59, digits=8)


def test_misuse_is_value_error():
    with pytest.raises(ValueError):
        hotp(b"short", 0)
    with pytest.raises(ValueError):
        hotp(SEEDS["SHA1"], -1)
    with pytest.raises(ValueError):
        totp(SEEDS["SHA1"], -5)


# --- the verifier (RFC 6238 section 5.2) ---

OTP = OtpAuth("totp", SEEDS["SHA1"], "alice", "Example", digits=8)
NOW = 1111111111  # step 37037037


def code_for_step(step):
    return hotp(OTP.secret, step, digits=8)


def test_accepts_the_current_code_and_returns_its_step():
    assert verify_totp(OTP, "14050471", NOW, None) == 37037037


def test_accepts_one_step_of_drift_each_way_but_not_two():
    step = time_step(NOW)
    assert verify_totp(OTP, code_for_step(step - 1), NOW, None) == step - 1
    assert verify_totp(OTP, code_for_step(step + 1), NOW, None) == step + 1
    for far in (step - 2, step + 2):
        with pytest.raises(CodeRejected):
            verify_totp(OTP, code_for_step(far), NOW, None)


def test_a_code_is_accepted_once():
    step = verify_totp(OTP, "14050471", NOW, None)
    with pytest.raises(CodeReplayed):
        verify_totp(OTP, "14050471", NOW, step)
    with pytest.raises(CodeReplayed):  # still refused a step later, inside the drift window
        verify_totp(OTP, "14050471", NOW + 30, step)


def test_an_older_step_than_the_last_accepted_is_refused():
    step = time_step(NOW)
    verify_totp(OTP, code_for_step(step + 1), NOW, None)
    with pytest.raises(CodeReplayed):
        verify_totp(OTP, code_for_step(step), NOW, step + 1)


def test_the_next_step_is_accepted_after_the_last():
    step = time_step(NOW)
    assert verify_totp(OTP, code_for_step(step + 1), NOW + 30, step) == step + 1


@pytest.mark.parametrize("code", ["", "1405047", "140504711", "1405047a", "١٤٠٥٠٤٧١", "00000000"])
def test_malformed_or_wrong_codes(code):
    with pytest.raises(CodeRejected) as info:
        verify_totp(OTP, code, NOW, None)
    assert type(info.value) is CodeRejected


def test_hotp_credentials_are_not_for_verify_totp():
    with pytest.raises(ValueError):
        verify_totp(OtpAuth("hotp", SEEDS["SHA1"], "a"), "755224", 0, None)


def test_verifier_object_remembers_per_key():
    verifier = TotpVerifier()
    verifier.verify("alice", OTP, "14050471", NOW)
    assert verifier.last_step("alice") == 37037037
    with pytest.raises(CodeReplayed):
        verifier.verify("alice", OTP, "14050471", NOW)
    verifier.verify("bob", OTP, "14050471", NOW)  # another enrolment has its own memory
    with pytest.raises(CodeRejected):
        verifier.verify("carol", OTP, "14050471", NOW + 90)
    assert verifier.last_step("carol") is None
