"""Password and passphrase generation from ``secrets``.

Callers may pass ``choice`` (a ``secrets.choice``-like function) so tests can
drive the generator; the default is the OS CSPRNG. Passphrases use EFF's long
word list (7,776 words, 12.9 bits a word) as shipped by the ``xkcdpass`` package.
"""

from __future__ import annotations

import re
import secrets
import string
from collections.abc import Callable, Sequence
from functools import lru_cache
from importlib import resources

__all__ = [
    "DEFAULT_ALPHABET",
    "eff_long_wordlist",
    "generate_passphrase",
    "generate_password",
]

Choice = Callable[[Sequence[str]], str]

# Classes a generated password contains one of each (when long enough); all ASCII
# printable except space, which sites and shells handle badly.
_CLASSES = (string.ascii_lowercase, string.ascii_uppercase, string.digits, string.punctuation)
DEFAULT_ALPHABET = "".join(_CLASSES)
MIN_LENGTH, MAX_LENGTH = 4, 1024
MIN_WORDS, MAX_WORDS = 3, 64
_WORD = re.compile(r"[a-z]+(?:-[a-z]+)?")


def generate_password(
    length: int = 20, *, alphabet: str = DEFAULT_ALPHABET, choice: Choice = secrets.choice
) -> str:
    """A random password of ``length`` characters from ``alphabet``.

    With the default alphabet every character class appears; we draw again
    rather than patch a character in, so the result stays uniform over the
    passwords that qualify.
    """
    if type(length) is not int or not MIN_LENGTH <= length <= MAX_LENGTH:
        raise ValueError(f"length must be between {MIN_LENGTH} and {MAX_LENGTH}")
    if len(set(alphabet)) < 2 or len(set(alphabet)) != len(alphabet):
        raise ValueError("alphabet needs at least two distinct characters and no repeats")
    classes = [c for c in _CLASSES if set(c) <= set(alphabet)] if alphabet else []
    while True:
        password = "".join(choice(alphabet) for _ in range(length))
        if all(any(ch in c for ch in password) for c in classes):
            return password


@lru_cache(maxsize=1)
def eff_long_wordlist() -> tuple[str, ...]:
    """EFF's long word list, checked: 7,776 distinct lowercase words (four hyphenated)."""
    text = resources.files("xkcdpass").joinpath("static/eff-long").read_text("utf-8")
    words = tuple(text.split())
    if len(set(words)) != 7776 or not all(_WORD.fullmatch(w) for w in words):
        raise RuntimeError("the installed EFF long word list is not the expected one")
    return words


def generate_passphrase(
    words: int = 6,
    *,
    separator: str = "-",
    wordlist: Sequence[str] | None = None,
    choice: Choice = secrets.choice,
) -> str:
    """``words`` words drawn uniformly and independently, joined by ``separator``."""
    if type(words) is not int or not MIN_WORDS <= words <= MAX_WORDS:
        raise ValueError(f"words must be between {MIN_WORDS} and {MAX_WORDS}")
    pool = eff_long_wordlist() if wordlist is None else tuple(wordlist)
    if len(set(pool)) < 2 or len(set(pool)) != len(pool):
        raise ValueError("wordlist needs at least two distinct words and no repeats")
    return separator.join(choice(pool) for _ in range(words))
