"""Our codes against Debian's oathtool (OATH Toolkit), the real binary, on random inputs."""

import os
import random
import subprocess

import pytest
from keystead.adapters.second_factor import OtpAuth, code_at, encode_secret, hotp, totp

pytestmark = [pytest.mark.slow]  # Debian's oathtool, installed by scripts/test

SEED = int.from_bytes(os.urandom(4), "big")


def oathtool(*args: str) -> str:
    done = subprocess.run(
        ["oathtool", "-b", *args], capture_output=True, text=True, check=True, timeout=10
    )
    return done.stdout.strip()


def cases(n):
    rng = random.Random(SEED)
    for _ in range(n):
        secret = rng.randbytes(rng.choice([10, 16, 20, 32, 64, rng.randint(10, 64)]))
        yield (
            secret,
            rng.choice(["SHA1", "SHA256", "SHA512"]),
            rng.choice([6, 7, 8]),
            rng.choice([30, 30, 60, rng.randint(1, 300)]),
            rng.randint(0, 2**34),
        )


@pytest.mark.parametrize("case", list(cases(40)))
def test_totp_matches_oathtool(case):
    secret, algorithm, digits, period, at = case
    expected = oathtool(
        f"--totp={algorithm.lower()}", "-N", f"@{at}", "-d", str(digits), "-s", f"{period}s",
        encode_secret(secret),
    )  # fmt: skip
    assert totp(secret, at, period=period, digits=digits, algorithm=algorithm) == expected, SEED
    otp = OtpAuth("totp", secret, "a", "b", algorithm, digits, period)
    assert code_at(OtpAuth.from_uri(otp.to_uri()), at) == expected, SEED


@pytest.mark.parametrize("case", list(cases(20)))
def test_hotp_matches_oathtool(case):
    secret, _, digits, _, counter = case
    expected = oathtool("-c", str(counter), "-d", str(digits), encode_secret(secret))
    assert hotp(secret, counter, digits=digits) == expected, SEED


def test_80_bit_example_secret_matches_oathtool():
    otp = OtpAuth.from_uri("otpauth://totp/Example:alice@google.com?secret=JBSWY3DPEHPK3PXP")
    for at in (0, 59, 1_700_000_000, 2_000_000_000):
        assert code_at(otp, at) == oathtool("--totp", "-N", f"@{at}", "JBSWY3DPEHPK3PXP")
