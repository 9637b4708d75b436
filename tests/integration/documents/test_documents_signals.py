"""``doc open`` never leaves decrypted plaintext behind: real signals on a real process.

A large document is opened by the real CLI; once its temporary output holds plaintext, the
process gets SIGTERM, SIGINT or SIGKILL. After SIGTERM and SIGINT the temporary output is
gone at once; after SIGKILL (which no process can catch) the next ``doc`` command removes it.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

SIZE = 192 * 1024 * 1024


@pytest.fixture
def big_document(make_account, tmp_path):
    alice = make_account("alice")
    src = tmp_path / "big.bin"
    with open(src, "wb") as f:
        f.truncate(SIZE)
    alice.admin.run("doc", "protect", str(src), timeout=300)
    src.unlink()
    return alice, tmp_path / "big.bin.kst"


def _temporaries(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.name.endswith(".tmp"))


def _open_and_signal(home, kst: Path, out: Path, sig: int) -> subprocess.Popen[str]:
    proc = home.spawn("doc", "open", str(kst), "-o", str(out))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        tmps = _temporaries(out.parent)
        if tmps and tmps[0].stat().st_size > 0:  # plaintext is being written
            proc.send_signal(sig)
            proc.communicate(timeout=60)
            return proc
        if proc.poll() is not None:
            raise AssertionError(
                "doc open finished before it could be interrupted: "
                + (proc.stderr.read() if proc.stderr else "")
            )
        time.sleep(0.005)
    proc.kill()
    raise AssertionError("no temporary output appeared")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_caught_signal_removes_the_temporary_output(big_document, sig):
    alice, kst = big_document
    out = kst.parent / "opened.bin"
    proc = _open_and_signal(alice.admin, kst, out, sig)
    assert proc.returncode != 0
    assert not out.exists() and _temporaries(kst.parent) == []


def test_after_sigkill_the_next_doc_command_removes_it(big_document):
    alice, kst = big_document
    out = kst.parent / "opened.bin"
    proc = _open_and_signal(alice.admin, kst, out, signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL
    [left] = _temporaries(kst.parent)  # nothing can run on SIGKILL...
    assert not out.exists()
    info = alice.admin.run("doc", "info", str(kst))  # ...so the next doc command cleans up
    assert _temporaries(kst.parent) == [] and not left.exists()
    assert "interrupted 'doc open'" in info.stderr
    alice.admin.run("doc", "open", str(kst), "-o", str(out), timeout=300)  # and it still opens
    assert out.stat().st_size == SIZE
