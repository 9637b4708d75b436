"""TOTP credentials stored as collection items, and picking one by name."""

import pytest
from keystead.adapters.second_factor import (
    AmbiguousName,
    OtpAuth,
    credential_from_item,
    credential_to_item,
    find_credential,
    take_code,
)
from keystead.core.errors import FormatError, NotFound, UnsupportedVersion

SECRET = b"12345678901234567890"
GITHUB = OtpAuth("totp", SECRET, "alice", "GitHub")
GITLAB = OtpAuth("totp", SECRET, "alice", "GitLab")
BOB = OtpAuth("totp", SECRET, "bob", "GitHub")
PLAIN = OtpAuth("totp", SECRET, "carol")


def test_item_round_trip():
    for otp in (GITHUB, PLAIN, OtpAuth("hotp", SECRET, "x", counter=9)):
        assert credential_from_item(credential_to_item(otp)) == otp


@pytest.mark.parametrize(
    "data",
    [b'{"uri":"otpauth://totp/a?secret=JBSWY3DPEHPK3PXP","v":1,"x":1}', b'{"uri":1,"v":1}',
     b'{"uri": "otpauth://totp/a?secret=JBSWY3DPEHPK3PXP", "v": 1}', b"nope"],
)  # fmt: skip
def test_bad_items(data):
    with pytest.raises(FormatError):
        credential_from_item(data)


def test_unknown_item_version():
    with pytest.raises(UnsupportedVersion):
        credential_from_item(b'{"uri":"otpauth://totp/a?secret=JBSWY3DPEHPK3PXP","v":2}')


def test_find_by_exact_name_then_unique_loose_match():
    creds = [GITHUB, GITLAB, BOB, PLAIN]
    assert find_credential(creds, "GitHub:alice") is GITHUB
    assert find_credential(creds, "gitlab") is GITLAB
    assert find_credential(creds, "BOB") is BOB
    assert find_credential(creds, "carol") is PLAIN
    with pytest.raises(AmbiguousName):
        find_credential(creds, "alice")
    with pytest.raises(AmbiguousName):
        find_credential(creds, "github")
    with pytest.raises(NotFound):
        find_credential(creds, "dave")


def test_take_code_advances_hotp_only():
    code, updated = take_code(OtpAuth("hotp", SECRET, "x", counter=0), 0)
    assert code == "755224" and updated is not None and updated.counter == 1
    assert take_code(updated, 0)[0] == "287082"
    code, none = take_code(OtpAuth("totp", SECRET, "x", digits=8), 59)
    assert code == "94287082" and none is None
