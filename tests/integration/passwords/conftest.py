"""A real headless Chromium with the Keystead extension and a native host, for autofill tests.

Fixtures, from the bottom up:

- ``vault_entries``: the entries the default host serves (override or parametrize indirectly).
- ``native_host_command``: an absolute path Chromium executes as the native host. By default a
  script written here that runs ``run_host`` over ``vault_entries`` and logs each origin asked
  for to ``host_log``. To test another host (``keystead passwords browser host``...), override
  this fixture, or ``@pytest.mark.parametrize("native_host_command", [path], indirect=True)``.
- ``extension_path``: the unpacked extension to load (default: the shipped one).
- ``autofill_browser``: a Playwright persistent context with both wired in.
- ``sites``: two loopback HTTP servers (two origins) serving pages the test registers.
"""

from __future__ import annotations

import http.server
import json
import os
import shutil
import stat
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from keystead.adapters.passwords._entry import Entry
from keystead.adapters.passwords._native import extension_dir, install_host_manifests

CHROMIUM = Path("/usr/bin/chromium")

pytestmark = pytest.mark.slow


def _require_chromium() -> None:
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is not installed: run scripts/test, which installs it")


@pytest.fixture
def vault_entries() -> list[Entry]:
    """No entries unless a test says otherwise."""
    return []


@pytest.fixture
def host_log(tmp_path: Path) -> Path:
    """Where the default host writes each origin it was asked for, one per line."""
    return tmp_path / "host-requests.log"


_HOST_SCRIPT = """#!{python}
import json, sys
from keystead.adapters.passwords._entry import Entry
from keystead.adapters.passwords._native import lookup_from_entries, run_host

with open({entries!r}, "rb") as f:
    entries = [Entry.from_bytes(item.encode()) for item in json.load(f)]
inner = lookup_from_entries(entries)

def lookup(origin):
    with open({log!r}, "a", encoding="utf-8") as log:
        log.write(origin + "\\n")
    return inner(origin)

sys.exit(run_host(sys.stdin.buffer, sys.stdout.buffer, lookup))
"""


@pytest.fixture
def native_host_command(
    request: pytest.FixtureRequest, tmp_path: Path, vault_entries: list[Entry], host_log: Path
) -> Path:
    """The executable Chromium starts for ``org.keystead.passwords``."""
    if hasattr(request, "param"):
        return Path(request.param)
    folder = tmp_path / "host"
    folder.mkdir()
    entries_file = folder / "entries.json"
    entries_file.write_text(json.dumps([e.to_bytes().decode() for e in vault_entries]))
    script = folder / "keystead-test-host"
    script.write_text(
        _HOST_SCRIPT.format(python=sys.executable, entries=str(entries_file), log=str(host_log))
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


@pytest.fixture
def extension_path(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """The extension to load: the shipped one, ``"unguarded"``, or a folder given as param.

    ``"unguarded"`` is a copy whose content script lacks its frame-origin guard, so a
    test can show that the background refuses a cross-origin frame on its own.
    """
    param = getattr(request, "param", "shipped")
    if param == "shipped":
        return extension_dir()
    if param != "unguarded":
        return Path(param)
    copy = tmp_path / "extension-unguarded"
    shutil.copytree(extension_dir(), copy)
    content = (copy / "content.js").read_text()
    start = content.index("// keystead:frame-guard-start")
    end = content.index("// keystead:frame-guard-end")
    if start >= end:
        raise RuntimeError("content.js frame-guard markers are out of order")
    (copy / "content.js").write_text(content[:start] + content[end:])
    return copy


@pytest.fixture
def autofill_browser(
    tmp_path: Path, native_host_command: Path, extension_path: Path
) -> Iterator[object]:
    """Headless Chromium with the extension loaded and the host manifest in its profile."""
    _require_chromium()
    from playwright.sync_api import sync_playwright

    profile = tmp_path / "chromium-profile"
    install_host_manifests(native_host_command, browsers=(), user_data_dirs=[profile])
    env = dict(os.environ, HOME=str(tmp_path))  # keep Chromium out of the real ~/.config
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(CHROMIUM),
            headless=True,
            env=env,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                f"--disable-extensions-except={extension_path}",
                f"--load-extension={extension_path}",
            ],
        )
        try:
            yield context
        finally:
            context.close()


class Site:
    """One loopback origin serving registered HTML pages."""

    def __init__(self) -> None:
        self.pages: dict[str, str] = {}
        pages = self.pages

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                body = pages.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                data = body.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def sites() -> Iterator[tuple[Site, Site]]:
    """Two sites on loopback whose origins differ (by port)."""
    a, b = Site(), Site()
    try:
        yield a, b
    finally:
        a.close()
        b.close()
