"""Where a device's home is, without importing anything heavy (the launcher needs it)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["home_dir"]


def home_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """``explicit``, else ``$KEYSTEAD_HOME``, else the XDG data folder's ``keystead``."""
    if explicit is not None:
        return Path(explicit)
    env = os.environ.get("KEYSTEAD_HOME")
    if env:
        return Path(env)
    from platformdirs import user_data_dir

    return Path(user_data_dir("keystead"))
