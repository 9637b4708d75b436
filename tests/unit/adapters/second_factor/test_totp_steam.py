"""Steam Guard codes: ``encoder=steam`` (KeePassXC, Aegis) and ``steam://`` (Bitwarden)."""

import pytest
from keystead.adapters.second_factor import CodeRejected, OtpAuth, OtpAuthError, code_at
from keystead.adapters.second_factor._totp import STEAM_ALPHABET, steam_code, verify_totp

# KeePassXC's tests/TestTotp.cpp: codes the Steam mobile app showed for this secret.
SECRET = "63BEDWCQZKTQWPESARIERL5DTTQFCJTK"
STEAM_APP = [(1511200518, "FR8RV"), (1511200714, "9P3VP")]
KEEPASSXC_URI = (
    f"otpauth://totp/Valve:test@example.com?secret={SECRET}&issuer=Valve&algorithm=SHA1"
    "&digits=5&period=30&encoder=steam"
)


def test_alphabet_is_steams():
    assert STEAM_ALPHABET == "23456789BCDFGHJKMNPQRTVWXY"


@pytest.mark.parametrize(("at", "expected"), STEAM_APP)
@pytest.mark.parametrize(
    "uri",
    [KEEPASSXC_URI, f"otpauth://totp/Steam:me?secret={SECRET}&encoder=steam", f"steam://{SECRET}"],
)
def test_known_codes_from_the_steam_app(uri, at, expected):
    otp = OtpAuth.from_uri(uri)
    assert (otp.encoder, otp.digits) == ("steam", 5)
    assert code_at(otp, at) == expected
    assert code_at(OtpAuth.from_uri(otp.to_uri()), at) == expected  # stored form agrees


def test_steam_uri_is_named_and_written_as_keepassxc_does():
    otp = OtpAuth.from_uri(f"STEAM://{SECRET.lower()}", account="alice")
    assert (otp.issuer, otp.account, otp.name) == ("Steam", "alice", "Steam:alice")
    assert otp.to_uri() == (
        f"otpauth://totp/Steam:alice?secret={SECRET}&issuer=Steam&algorithm=SHA1&digits=5"
        "&period=30&encoder=steam"
    )
    assert OtpAuth.from_uri(f"steam://{SECRET}").account == "Steam"
    with pytest.raises(ValueError):
        OtpAuth.from_uri(KEEPASSXC_URI, account="alice")


def test_codes_use_only_the_alphabet_and_differ_from_decimal():
    secret = bytes(range(20))
    codes = {steam_code(secret, step) for step in range(200)}
    assert len(codes) > 190
    assert all(len(c) == 5 and set(c) <= set(STEAM_ALPHABET) for c in codes)


def test_verify_steam_codes():
    otp = OtpAuth.from_uri(KEEPASSXC_URI)
    at, code = STEAM_APP[0]
    step = verify_totp(otp, code, at, None)
    assert step == at // 30
    with pytest.raises(CodeRejected):
        verify_totp(otp, code.lower(), at, None)
    with pytest.raises(CodeRejected):
        verify_totp(otp, "12345", at, None)


@pytest.mark.parametrize(
    "uri, words",
    [
        (f"otpauth://totp/a?secret={SECRET}&encoder=yandex", "encoder 'yandex'"),
        (f"otpauth://totp/a?secret={SECRET}&encoder=steam&digits=6", "digits"),
        (f"otpauth://totp/a?secret={SECRET}&encoder=steam&algorithm=SHA256", "SHA1"),
        (f"otpauth://hotp/a?secret={SECRET}&encoder=steam&counter=1", "totp"),
        (f"otpauth://totp/a?secret={SECRET}&digits=5", "digits"),
        ("steam://not-base32", "base32"),
        ("steam://", "base32"),
    ],
)
def test_refused_with_the_reason(uri, words):
    with pytest.raises(OtpAuthError, match=words):
        OtpAuth.from_uri(uri)


def test_constructor_keeps_steam_consistent():
    with pytest.raises(OtpAuthError):
        OtpAuth("totp", b"\x01" * 10, "a", encoder="steam")  # 6 digits is not Steam
    with pytest.raises(OtpAuthError):
        OtpAuth("totp", b"\x01" * 10, "a", digits=5)  # 5 digits without Steam
    assert OtpAuth("totp", b"\x01" * 10, "a", digits=5, encoder="steam").digits == 5
