"""Native messaging: framing (good and bad frames), the host loop, manifests, extension id."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import struct
from pathlib import Path

import pytest
from keystead.adapters.passwords._entry import Entry
from keystead.adapters.passwords._errors import FramingError
from keystead.adapters.passwords._native import (
    CHROMIUM_EXTENSION_ID,
    FIREFOX_EXTENSION_ID,
    HOST_NAME,
    MAX_OUTGOING,
    extension_dir,
    host_manifest,
    install_host_manifests,
    lookup_from_entries,
    read_frame,
    run_host,
    write_frame,
)


def frame(obj: object) -> bytes:
    body = json.dumps(obj).encode()
    return struct.pack("=I", len(body)) + body


def test_frame_round_trip_native_byte_order() -> None:
    out = io.BytesIO()
    write_frame(out, {"a": "zoë"})
    data = out.getvalue()
    assert data[:4] == struct.pack("=I", len('{"a":"zoë"}'.encode()))
    assert read_frame(io.BytesIO(data)) == {"a": "zoë"}
    assert read_frame(io.BytesIO(b"")) is None


def _raw(body: bytes) -> bytes:
    return struct.pack("=I", len(body)) + body


@pytest.mark.parametrize(
    "data",
    [
        b"\x01\x00",  # cut inside the length
        struct.pack("=I", 10) + b"{}",  # cut inside the body
        struct.pack("=I", 2) + b"\xff\xfe",  # not UTF-8
        struct.pack("=I", 3) + b"{x}",  # not JSON
        frame([1, 2]),  # not an object
        struct.pack("=I", 2**31),  # absurd length
        # what a hostile page's script could make the extension relay: deep nesting (a
        # RecursionError and a traceback in a plain json.loads), a number of 100,000 digits
        _raw(b"[" * 50_000 + b"]" * 50_000),
        _raw(b'{"v": 1, "n": ' + b"9" * 60_000 + b"}"),
        _raw(b'{"a":' * 40 + b"1" + b"}" * 40),  # 40 deep: past the core's bound of 32
        _raw(b'{"v": 1, "v": 2}'),  # a key twice: which one would the host believe?
    ],
)
def test_bad_frames_raise(data: bytes) -> None:
    with pytest.raises(FramingError):
        read_frame(io.BytesIO(data))


def test_oversized_outgoing_message_is_refused() -> None:
    with pytest.raises(ValueError):
        write_frame(io.BytesIO(), {"x": "a" * MAX_OUTGOING})


ENTRIES = [
    Entry(id="1", url="https://example.com/login", username="alice", password="p1"),
    Entry(id="2", url="https://www.example.com/", username="bob", password="p2"),
    Entry(id="3", url="http://127.0.0.1:8080/", username="local", password="p3"),
]


def run(*messages: object, raw: bytes = b"") -> tuple[int, list[dict[str, object]]]:
    stdin = io.BytesIO(b"".join(frame(m) for m in messages) + raw)
    stdout = io.BytesIO()
    status = run_host(stdin, stdout, lookup_from_entries(ENTRIES))
    stdout.seek(0)
    answers = []
    while (m := read_frame(stdout)) is not None:
        answers.append(m)
    return status, answers


def test_host_answers_lookups_for_the_origin_only() -> None:
    status, answers = run(
        {"v": 1, "type": "lookup", "origin": "https://example.com"},
        {"v": 1, "type": "lookup", "origin": "http://127.0.0.1:8080"},
        {"v": 1, "type": "lookup", "origin": "https://evil.example.net"},
    )
    assert status == 0
    assert answers[0] == {
        "v": 1,
        "type": "credentials",
        "origin": "https://example.com",
        "credentials": [{"username": "alice", "password": "p1"}],
    }
    assert answers[1]["credentials"] == [{"username": "local", "password": "p3"}]
    assert answers[2]["credentials"] == []


def test_domain_tier_is_opt_in() -> None:
    lookup = lookup_from_entries(ENTRIES, allow_domain=True)
    assert lookup("https://example.com") == [("alice", "p1"), ("bob", "p2")]


def test_bad_requests_get_errors_and_the_loop_goes_on() -> None:
    status, answers = run(
        {"v": 2, "type": "lookup", "origin": "https://example.com"},
        {"v": 1, "type": "dump"},
        {"v": 1, "type": "lookup", "origin": "https://example.com/path"},
        {"v": 1, "type": "lookup", "origin": "https://example.com"},
    )
    assert status == 0
    assert [a["type"] for a in answers] == ["error", "error", "error", "credentials"]


def test_a_bad_frame_ends_the_host_with_status_1() -> None:
    status, answers = run(
        {"v": 1, "type": "lookup", "origin": "https://example.com"}, raw=struct.pack("=I", 5) + b"{"
    )
    assert status == 1 and len(answers) == 1


def test_manifests(tmp_path: Path) -> None:
    cmd = tmp_path / "host"
    chromium = host_manifest("chromium", cmd)
    assert chromium == {
        "name": HOST_NAME,
        "description": "Keystead passwords",
        "path": str(cmd),
        "type": "stdio",
        "allowed_origins": [f"chrome-extension://{CHROMIUM_EXTENSION_ID}/"],
    }
    assert host_manifest("firefox", cmd)["allowed_extensions"] == [FIREFOX_EXTENSION_ID]
    with pytest.raises(ValueError):
        host_manifest("chromium", Path("relative"))
    with pytest.raises(ValueError):
        host_manifest("safari", cmd)
    written = install_host_manifests(
        cmd, home=tmp_path / "home", user_data_dirs=[tmp_path / "profile"], platform="linux"
    )
    rel = sorted(str(p.relative_to(tmp_path)) for p in written)
    assert rel == sorted(
        [
            f"home/.config/chromium/NativeMessagingHosts/{HOST_NAME}.json",
            f"home/.config/google-chrome/NativeMessagingHosts/{HOST_NAME}.json",
            f"home/.mozilla/native-messaging-hosts/{HOST_NAME}.json",
            f"profile/NativeMessagingHosts/{HOST_NAME}.json",
        ]
    )
    assert json.loads(written[-1].read_text()) == chromium
    with pytest.raises(ValueError):
        install_host_manifests(cmd, home=tmp_path, platform="win32")


def test_extension_id_comes_from_the_manifest_key() -> None:
    manifest = json.loads((extension_dir() / "manifest.json").read_text())
    der = base64.b64decode(manifest["key"], validate=True)
    digest = hashlib.sha256(der).hexdigest()[:32]
    assert "".join(chr(ord("a") + int(c, 16)) for c in digest) == CHROMIUM_EXTENSION_ID
    assert manifest["manifest_version"] == 3
    assert manifest["browser_specific_settings"]["gecko"]["id"] == FIREFOX_EXTENSION_ID
    assert "PRIVATE" not in json.dumps(manifest)
    for script in ("background.js", "content.js"):
        assert (extension_dir() / script).is_file()
