"""Where a device's home is, importing nothing heavy: the launcher needs it (a str, not a Path:
pathlib alone would cost the launcher 5 ms)."""

from __future__ import annotations

import os

__all__ = ["home_dir"]


def home_dir(explicit: str | os.PathLike[str] | None = None) -> str:
    """``explicit``, else ``$KEYSTEAD_HOME``, else the XDG data folder's ``keystead``."""
    if explicit is not None:
        return os.fspath(explicit)
    env = os.environ.get("KEYSTEAD_HOME")
    if env:
        return env
    from platformdirs import user_data_dir

    return user_data_dir("keystead")
