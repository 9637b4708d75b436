"""The passwords adapter's errors, as branches of Keystead's tree.

FormatError (keystead.core.errors)
├── MalformedFile     an import file we refuse; carries the 1-based line number
├── CannotImport      a field of an import file that the vault cannot keep
├── CannotExport      an entry the chosen export format cannot carry exactly
├── WrongFilePassword an encrypted export's password (or key file) does not open it
└── FramingError      a bad native-messaging frame (length, UTF-8, JSON)
"""

from __future__ import annotations

from keystead.core.errors import FormatError

__all__ = [
    "CannotExport",
    "CannotImport",
    "FramingError",
    "MalformedFile",
    "WrongFilePassword",
]


class MalformedFile(FormatError):
    """An import file is not what its format promises; nothing was imported.

    ``line`` is the 1-based line of the file where the problem starts, so the
    person can open the file and fix it.
    """

    def __init__(self, format_name: str, line: int, problem: str) -> None:
        super().__init__(f"{format_name}: line {line}: {problem}")
        self.format_name = format_name
        self.line = line
        self.problem = problem


class CannotExport(FormatError):
    """Exporting would change a value the format claims to carry, so we refuse.

    Silent loss is worse than no export: the person can pick a richer format.
    """

    def __init__(self, format_name: str, entry_id: str, problem: str) -> None:
        super().__init__(f"{format_name}: entry {entry_id}: {problem}")
        self.format_name = format_name
        self.entry_id = entry_id
        self.problem = problem


class CannotImport(FormatError):
    """An import would leave out a value; nothing was imported (``--skip-unsupported``
    imports the rest and lists what was left out)."""

    def __init__(self, format_name: str, item: str, field: str, problem: str) -> None:
        super().__init__(
            f"{format_name}: item {item}: {field} cannot be kept ({problem}); nothing imported "
            "(--skip-unsupported imports the rest and lists what was left out)"
        )
        self.format_name = format_name
        self.item = item
        self.field = field
        self.problem = problem


class WrongFilePassword(FormatError):
    """The file's password or key file does not open it (no detail on why)."""


class FramingError(FormatError):
    """A native-messaging frame is malformed; the stream cannot be trusted after it."""
