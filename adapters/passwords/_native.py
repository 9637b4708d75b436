"""The browser bridge: native-messaging framing, the host loop and host manifests.

Chromium and Firefox talk to a native host over its stdin/stdout: each message
is a 4-byte length in native byte order, then that many bytes of UTF-8 JSON.
The host answers one request type, ``lookup`` for an origin; the extension
takes that origin from the browser (the message sender), never from the page.
"""

from __future__ import annotations

import json
import struct
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from ._entry import Entry
from ._errors import FramingError
from ._match import MatchKind, find_matches, parse_origin

__all__ = [
    "CHROMIUM_EXTENSION_ID",
    "FIREFOX_EXTENSION_ID",
    "HOST_NAME",
    "MAX_INCOMING",
    "MAX_OUTGOING",
    "PROTOCOL_VERSION",
    "Lookup",
    "extension_dir",
    "host_manifest",
    "install_host_manifests",
    "lookup_from_entries",
    "read_frame",
    "run_host",
    "write_frame",
]

HOST_NAME = "org.keystead.passwords"
PROTOCOL_VERSION = 1
CHROMIUM_EXTENSION_ID = "mohmibfjceenekhcgofpijlmnjpckdcd"
"""From the public key in extension/manifest.json (sha256 of the DER, a-p digits)."""
FIREFOX_EXTENSION_ID = "passwords@keystead.org"
MAX_OUTGOING = 1024 * 1024
"""Chromium drops a host-to-browser message over 1 MiB."""
MAX_INCOMING = 1024 * 1024
"""Our own limit: a lookup request is tiny, so a huge length means a broken stream."""

_LENGTH = struct.Struct("=I")  # native byte order, as both browsers specify

Lookup = Callable[[str], Sequence[tuple[str, str]]]
"""``(origin) -> [(username, password), ...]`` for a serialized origin."""


def _read_exactly(stream: BinaryIO, n: int) -> bytes:
    chunks, need = [], n
    while need:
        chunk = stream.read(need)
        if not chunk:
            break
        chunks.append(chunk)
        need -= len(chunk)
    return b"".join(chunks)


def read_frame(stream: BinaryIO, *, limit: int = MAX_INCOMING) -> dict[str, Any] | None:
    """The next message as a JSON object; None at a clean end of stream."""
    header = _read_exactly(stream, _LENGTH.size)
    if not header:
        return None
    if len(header) < _LENGTH.size:
        raise FramingError("stream ended inside a length prefix")
    (length,) = _LENGTH.unpack(header)
    if length > limit:
        raise FramingError(f"message of {length} bytes is over the {limit}-byte limit")
    body = _read_exactly(stream, length)
    if len(body) < length:
        raise FramingError("stream ended inside a message")
    from keystead.core import FormatError, parse_json_object

    # The core's strict parser: integers and nesting bounded before conversion, no
    # duplicate keys, no floats (a page can make the extension relay anything).
    try:
        return parse_json_object(body, what="message")
    except FormatError as e:
        raise FramingError(str(e)) from e


def write_frame(stream: BinaryIO, message: dict[str, Any]) -> None:
    """Send one message; refuse one the browser would drop for its size."""
    body = json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    if len(body) > MAX_OUTGOING:
        raise ValueError(f"message of {len(body)} bytes is over the browser's 1 MiB limit")
    stream.write(_LENGTH.pack(len(body)) + body)
    stream.flush()


def _answer(message: dict[str, Any], lookup: Lookup) -> dict[str, Any]:
    if message.get("v") != PROTOCOL_VERSION:
        return {"v": PROTOCOL_VERSION, "type": "error", "error": "unsupported protocol version"}
    if message.get("type") != "lookup" or not isinstance(message.get("origin"), str):
        return {"v": PROTOCOL_VERSION, "type": "error", "error": "expected a lookup for an origin"}
    try:
        origin = str(parse_origin(message["origin"]))
    except ValueError:
        return {"v": PROTOCOL_VERSION, "type": "error", "error": "not an http(s) origin"}
    credentials = [{"username": u, "password": p} for u, p in lookup(origin)]
    return {
        "v": PROTOCOL_VERSION,
        "type": "credentials",
        "origin": origin,
        "credentials": credentials,
    }


def run_host(stdin: BinaryIO, stdout: BinaryIO, lookup: Lookup) -> int:
    """Answer lookups until the browser closes the pipe; the process exit status.

    A bad request gets an error answer and the loop goes on; a bad frame ends
    it (status 1), because after one the stream's boundaries are unknown.
    """
    while True:
        try:
            message = read_frame(stdin)
        except FramingError as e:
            print(f"keystead native host: {e}", file=sys.stderr)
            return 1
        if message is None:
            return 0
        write_frame(stdout, _answer(message, lookup))


def lookup_from_entries(entries: Iterable[Entry], *, allow_domain: bool = False) -> Lookup:
    """A lookup over a fixed list: entries whose URL has exactly this origin.

    With ``allow_domain`` entries for other hosts of the same registrable
    domain come after them; autofill leaves it off by default.
    """
    snapshot = tuple(entries)
    tiers = tuple(MatchKind) if allow_domain else (MatchKind.EXACT, MatchKind.ORIGIN)

    def lookup(origin: str) -> list[tuple[str, str]]:
        matches = find_matches(snapshot, origin + "/", tiers=tiers)
        return [(m.entry.username, m.entry.password) for m in matches]

    return lookup


def extension_dir() -> Path:
    """The unpacked extension shipped with this package (load it with --load-extension).

    Resolved: in a strict editable install this module is a symlink into a link tree whose
    files are symlinks too, and Chromium does not load an extension made of symlinks."""
    return Path(__file__).resolve().with_name("extension")


def host_manifest(
    browser: str, command: Path, *, extension_id: str | None = None
) -> dict[str, Any]:
    """The JSON a browser reads to find and trust our host."""
    if not command.is_absolute():
        raise ValueError("the host command must be an absolute path")
    manifest: dict[str, Any] = {
        "name": HOST_NAME,
        "description": "Keystead passwords",
        "path": str(command),
        "type": "stdio",
    }
    if browser == "firefox":
        manifest["allowed_extensions"] = [extension_id or FIREFOX_EXTENSION_ID]
    elif browser in ("chromium", "chrome"):
        manifest["allowed_origins"] = [
            f"chrome-extension://{extension_id or CHROMIUM_EXTENSION_ID}/"
        ]
    else:
        raise ValueError(f"unknown browser {browser!r}")
    return manifest


_DIRS = {
    "linux": {
        "chromium": ".config/chromium/NativeMessagingHosts",
        "chrome": ".config/google-chrome/NativeMessagingHosts",
        "firefox": ".mozilla/native-messaging-hosts",
    },
    "darwin": {
        "chromium": "Library/Application Support/Chromium/NativeMessagingHosts",
        "chrome": "Library/Application Support/Google/Chrome/NativeMessagingHosts",
        "firefox": "Library/Application Support/Mozilla/NativeMessagingHosts",
    },
}


def install_host_manifests(
    command: Path,
    *,
    browsers: Sequence[str] = ("chromium", "chrome", "firefox"),
    home: Path | None = None,
    user_data_dirs: Sequence[Path] = (),
    platform: str = sys.platform,
    chromium_extension_id: str = CHROMIUM_EXTENSION_ID,
    firefox_extension_id: str = FIREFOX_EXTENSION_ID,
) -> list[Path]:
    """Write the host manifest for each browser (per-user) and each Chromium user-data-dir.

    Returns the files written. Windows keeps these in the registry: not supported.
    """
    if platform not in _DIRS:
        raise ValueError(f"native messaging manifests for {platform!r} are not supported")
    base = Path.home() if home is None else home
    targets: list[tuple[Path, dict[str, Any]]] = []
    for browser in browsers:
        ext = firefox_extension_id if browser == "firefox" else chromium_extension_id
        manifest = host_manifest(browser, command, extension_id=ext)
        targets.append((base / _DIRS[platform][browser], manifest))
    for data_dir in user_data_dirs:
        manifest = host_manifest("chromium", command, extension_id=chromium_extension_id)
        targets.append((data_dir / "NativeMessagingHosts", manifest))
    from keystead.core import atomic_write

    written = []
    for folder, manifest in targets:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{HOST_NAME}.json"
        text = json.dumps(manifest, indent=2) + "\n"
        atomic_write(path, text.encode(), 0o644, durable=False)
        written.append(path)
    return written
