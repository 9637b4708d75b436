"""The otpauth:// Key URI format: what we accept, what we refuse, and round trips."""

import pytest
from keystead.adapters.second_factor import OtpAuth, OtpAuthError, decode_secret, encode_secret
from keystead.core.errors import FormatError

GOOGLE_EXAMPLE = "otpauth://totp/Example:alice@google.com?secret=JBSWY3DPEHPK3PXP&issuer=Example"


def test_key_uri_format_example_parses_with_its_80_bit_secret():
    otp = OtpAuth.from_uri(GOOGLE_EXAMPLE)
    assert otp.kind == "totp"
    assert otp.issuer == "Example"
    assert otp.account == "alice@google.com"
    assert otp.name == "Example:alice@google.com"
    assert otp.secret == b"Hello!\xde\xad\xbe\xef"
    assert len(otp.secret) * 8 == 80
    assert (otp.algorithm, otp.digits, otp.period) == ("SHA1", 6, 30)


def test_all_parameters():
    otp = OtpAuth.from_uri(
        "otpauth://totp/ACME%20Co:john.doe@email.com?secret=HXDMVJECJJWSRB3HWIZR4IFUGFTMXBOZ"
        "&issuer=ACME%20Co&algorithm=SHA512&digits=8&period=60"
    )
    assert otp.issuer == "ACME Co"
    assert (otp.algorithm, otp.digits, otp.period) == ("SHA512", 8, 60)


def test_hotp_with_counter():
    otp = OtpAuth.from_uri("otpauth://hotp/alice?secret=JBSWY3DPEHPK3PXP&counter=42&digits=7")
    assert (otp.kind, otp.counter, otp.digits, otp.issuer, otp.name) == (
        "hotp",
        42,
        7,
        None,
        "alice",
    )


def test_label_space_after_colon_and_issuer_from_label_only():
    otp = OtpAuth.from_uri("otpauth://totp/Big%20Corp:%20bob?secret=JBSWY3DPEHPK3PXP")
    assert (otp.issuer, otp.account) == ("Big Corp", "bob")


def test_lowercase_and_spaced_secret_is_accepted():
    assert decode_secret("jbsw y3dp ehpk 3pxp") == decode_secret("JBSWY3DPEHPK3PXP")


def test_image_is_kept_and_written_back():
    otp = OtpAuth.from_uri(GOOGLE_EXAMPLE + "&image=https%3A%2F%2Fexample.com%2Fa.png%3Fs%3D1")
    assert otp.image == "https://example.com/a.png?s=1"
    assert OtpAuth.from_uri(otp.to_uri()) == otp


@pytest.mark.parametrize("param", ["color=ff0000", "lock=true", "pin=1234", "foo=bar"])
def test_other_parameters_are_refused_by_name(param):
    name = param.split("=")[0]
    with pytest.raises(OtpAuthError, match=f"parameter '{name}' is not supported"):
        OtpAuth.from_uri(GOOGLE_EXAMPLE + "&" + param)


@pytest.mark.parametrize(
    "otp",
    [
        OtpAuth("totp", b"\x01" * 10, "alice@example.com", "Example"),
        OtpAuth("totp", bytes(range(64)), "a b&c?d", "Iss uer/&=", "SHA256", 8, 45),
        OtpAuth("hotp", b"\xff" * 20, "ünïcode", None, "SHA512", 7, counter=2**64 - 1),
    ],
)
def test_round_trip(otp):
    assert OtpAuth.from_uri(otp.to_uri()) == otp


def test_to_uri_is_explicit():
    uri = OtpAuth.from_uri(GOOGLE_EXAMPLE).to_uri()
    assert uri == (
        "otpauth://totp/Example:alice@google.com?secret=JBSWY3DPEHPK3PXP&issuer=Example"
        "&algorithm=SHA1&digits=6&period=30"
    )


def test_repr_hides_the_secret():
    otp = OtpAuth.from_uri(GOOGLE_EXAMPLE)
    assert "JBSW" not in repr(otp) and "Hello" not in repr(otp)


BAD = {
    "other scheme": "https://totp/a?secret=JBSWY3DPEHPK3PXP",
    "unknown type": "otpauth://motp/a?secret=JBSWY3DPEHPK3PXP",
    "no label": "otpauth://totp/?secret=JBSWY3DPEHPK3PXP",
    "no secret": "otpauth://totp/a?issuer=x",
    "empty secret": "otpauth://totp/a?secret=",
    "secret not base32": "otpauth://totp/a?secret=JBSWY3DPEHPK3PX1",
    "secret 75 bits": "otpauth://totp/a?secret=JBSWY3DPEHPK3PX",
    "secret 40 bits": "otpauth://totp/a?secret=JBSWY3DP",
    "secret trailing bits": "otpauth://totp/a?secret=AAAAAAAAAAAAAAAAAAAAAAAAAB",
    "two secrets": "otpauth://totp/a?secret=JBSWY3DPEHPK3PXP&secret=JBSWY3DPEHPK3PXP",
    "algorithm MD5": "otpauth://totp/a?secret=JBSWY3DPEHPK3PXP&algorithm=MD5",
    "digits 5": "otpauth://totp/a?secret=JBSWY3DPEHPK3PXP&digits=5",
    "digits 9": "otpauth://totp/a?secret=JBSWY3DPEHPK3PXP&digits=9",
    "digits text": "otpauth://totp/a?secret=JBSWY3DPEHPK3PXP&digits=six",
    "digits leading zero": "otpauth://totp/a?secret=JBSWY3DPEHPK3PXP&digits=06",
    "period 0": "otpauth://totp/a?secret=JBSWY3DPEHPK3PXP&period=0",
    "period negative": "otpauth://totp/a?secret=JBSWY3DPEHPK3PXP&period=-30",
    "period on hotp": "otpauth://hotp/a?secret=JBSWY3DPEHPK3PXP&counter=1&period=30",
    "counter on totp": "otpauth://totp/a?secret=JBSWY3DPEHPK3PXP&counter=1",
    "hotp without counter": "otpauth://hotp/a?secret=JBSWY3DPEHPK3PXP",
    "counter too big": f"otpauth://hotp/a?secret=JBSWY3DPEHPK3PXP&counter={2**64}",
    "issuers differ": "otpauth://totp/Evil:a?secret=JBSWY3DPEHPK3PXP&issuer=Good",
    "two colons": "otpauth://totp/a:b:c?secret=JBSWY3DPEHPK3PXP",
    "empty label issuer": "otpauth://totp/:bob?secret=JBSWY3DPEHPK3PXP",
    "empty account": "otpauth://totp/Example:?secret=JBSWY3DPEHPK3PXP",
    "control in label": "otpauth://totp/a%0Ab?secret=JBSWY3DPEHPK3PXP",
    "label not utf-8": "otpauth://totp/a%FF?secret=JBSWY3DPEHPK3PXP",
    "fragment": "otpauth://totp/a?secret=JBSWY3DPEHPK3PXP#x",
    "malformed query": "otpauth://totp/a?secret=JBSWY3DPEHPK3PXP&&digits",
}


@pytest.mark.parametrize("uri", list(BAD.values()), ids=list(BAD))
def test_refused(uri):
    with pytest.raises(OtpAuthError):
        OtpAuth.from_uri(uri)


def test_error_is_in_the_format_family():
    assert issubclass(OtpAuthError, FormatError)


def test_constructor_checks_too():
    with pytest.raises(OtpAuthError):
        OtpAuth("totp", b"short", "a")
    with pytest.raises(OtpAuthError):
        OtpAuth("totp", b"\x00" * 10, "a", digits=10)
    with pytest.raises(OtpAuthError):
        OtpAuth("totp", b"\x00" * 10, "a:b")


def test_encode_secret_has_no_padding():
    assert encode_secret(b"\x00" * 11) == "AAAAAAAAAAAAAAAAAA"
    assert decode_secret("AAAAAAAAAAAAAAAAAA") == b"\x00" * 11
