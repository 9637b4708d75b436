"""Generator: right shape, every class present, bounds enforced, drawable by a caller."""

from __future__ import annotations

import string

import pytest
from keystead.adapters.passwords._generate import (
    eff_long_wordlist,
    generate_passphrase,
    generate_password,
)


@pytest.mark.parametrize("length", [4, 20, 128])
def test_password_length_and_classes(length: int) -> None:
    for _ in range(50):
        pw = generate_password(length)
        assert len(pw) == length
        for cls in (
            string.ascii_lowercase,
            string.ascii_uppercase,
            string.digits,
            string.punctuation,
        ):
            assert any(c in cls for c in pw)


def test_custom_alphabet_and_choice() -> None:
    assert set(generate_password(30, alphabet="ab")) <= {"a", "b"}
    draws = iter("abcdefgh")
    assert (
        generate_password(4, alphabet=string.ascii_lowercase, choice=lambda s: next(draws))
        == "abcd"
    )


def test_passwords_differ() -> None:
    assert len({generate_password() for _ in range(100)}) == 100


@pytest.mark.parametrize("bad", [0, 3, 1025, True, 8.0])
def test_password_bounds(bad: object) -> None:
    with pytest.raises(ValueError):
        generate_password(bad)  # type: ignore[arg-type]


def test_passphrase() -> None:
    words = eff_long_wordlist()
    phrase = generate_passphrase(6, separator=" ")
    parts = phrase.split(" ")
    assert len(parts) == 6 and all(p in words for p in parts)
    assert generate_passphrase(3, separator=" ", wordlist=["x", "y"]).count(" ") == 2
    with pytest.raises(ValueError):
        generate_passphrase(2)
    with pytest.raises(ValueError):
        generate_passphrase(4, wordlist=["same", "same"])


def test_wordlist_is_eff_long() -> None:
    words = eff_long_wordlist()
    assert len(words) == 7776 and words[0] == "abacus" and words[-1] == "zoom"
