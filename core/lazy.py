"""Lazy re-exports for a package's ``__init__``: quick commands import only what they use.

__getattr__, __dir__ = lazy_exports(__name__, globals(), {"Name": ".module", ...})
"""

from __future__ import annotations

import importlib

TYPE_CHECKING = False  # not typing's: the launcher imports this and not typing
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, namespace: dict[str, Any], names: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Module ``__getattr__``/``__dir__`` that import ``names[name]`` (relative) on first use."""

    def __getattr__(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, package), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace.get("__all__", ()), *names})

    return __getattr__, __dir__
