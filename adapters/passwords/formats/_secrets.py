"""What opens an encrypted export: its password (asked for only when needed) and a key file."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["FileSecrets", "no_password"]


def no_password() -> str:
    raise ValueError("this file needs a password and none can be asked for")


@dataclass(frozen=True)
class FileSecrets:
    """``password`` is called at most once, only by a format whose file is encrypted."""

    password: Callable[[], str] = no_password
    key_file: bytes | None = None
