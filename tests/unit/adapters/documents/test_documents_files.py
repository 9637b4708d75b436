"""The path functions: the target appears only after the whole document verified."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from documents_helpers import KEY, make_header, protect
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from keystead.adapters.documents import Header, open_to_path, protect_to_path
from keystead.core.errors import DecryptionFailed, Forbidden, KeysteadError

PLAINTEXT = os.urandom(3 * 4096 + 7)
DOC = protect(PLAINTEXT)


def _key(_h: Header) -> bytes:
    return KEY


def test_open_to_path(tmp_path: Path) -> None:
    src, out = tmp_path / "a.kst", tmp_path / "a.pdf"
    src.write_bytes(DOC)
    assert open_to_path(src, out, _key) == make_header()
    assert out.read_bytes() == PLAINTEXT
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.kst", "a.pdf"]


def test_protect_to_path_round_trip(tmp_path: Path) -> None:
    (tmp_path / "in").write_bytes(PLAINTEXT)
    assert protect_to_path(tmp_path / "in", tmp_path / "in.kst", make_header(), KEY) == len(
        PLAINTEXT
    )
    assert (tmp_path / "in.kst").read_bytes() == DOC
    open_to_path(str(tmp_path / "in.kst"), str(tmp_path / "out"), _key)
    assert (tmp_path / "out").read_bytes() == PLAINTEXT


@pytest.mark.parametrize(
    "doc", [DOC[:-1], DOC + b"\x00", DOC[:-4200], DOC[:100] + b"\xff" + DOC[101:]]
)
def test_failed_open_leaves_nothing(tmp_path: Path, doc: bytes) -> None:
    (tmp_path / "a.kst").write_bytes(doc)
    with pytest.raises(KeysteadError):
        open_to_path(tmp_path / "a.kst", tmp_path / "a.pdf", _key)
    assert [p.name for p in tmp_path.iterdir()] == ["a.kst"]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.integers(0, len(DOC) * 8 - 1))
def test_flipped_bit_leaves_nothing(tmp_path: Path, bit: int) -> None:
    doc = bytearray(DOC)
    doc[bit // 8] ^= 1 << (bit % 8)
    (tmp_path / "a.kst").write_bytes(doc)
    with pytest.raises(KeysteadError):
        open_to_path(tmp_path / "a.kst", tmp_path / "a.pdf", _key)
    assert [p.name for p in tmp_path.iterdir()] == ["a.kst"]


def test_refusal_by_the_provider_propagates_and_leaves_nothing(tmp_path: Path) -> None:
    def refuse(_h: Header) -> bytes:
        raise Forbidden("grant revoked")

    (tmp_path / "a.kst").write_bytes(DOC)
    with pytest.raises(Forbidden):
        open_to_path(tmp_path / "a.kst", tmp_path / "a.pdf", refuse)
    assert [p.name for p in tmp_path.iterdir()] == ["a.kst"]


@pytest.mark.parametrize("after", [1, 2])
def test_interrupt_leaves_nothing(tmp_path: Path, after: int) -> None:
    calls = []

    def interrupt(n: int) -> None:
        calls.append(n)
        if len(calls) == after:
            raise KeyboardInterrupt

    (tmp_path / "a.kst").write_bytes(protect(os.urandom(3 * 1024 * 1024)))
    with pytest.raises(KeyboardInterrupt):
        open_to_path(tmp_path / "a.kst", tmp_path / "a.pdf", _key, progress=interrupt)
    assert [p.name for p in tmp_path.iterdir()] == ["a.kst"]


def test_existing_target_is_kept_and_no_key_is_asked(tmp_path: Path) -> None:
    asked = []

    def provider(h: Header) -> bytes:
        asked.append(h)
        return KEY

    (tmp_path / "a.kst").write_bytes(DOC)
    (tmp_path / "a.pdf").write_bytes(b"mine")
    with pytest.raises(FileExistsError):
        open_to_path(tmp_path / "a.kst", tmp_path / "a.pdf", provider)
    assert (tmp_path / "a.pdf").read_bytes() == b"mine" and not asked
    open_to_path(tmp_path / "a.kst", tmp_path / "a.pdf", provider, overwrite=True)
    assert (tmp_path / "a.pdf").read_bytes() == PLAINTEXT


def test_failed_overwrite_keeps_the_old_file(tmp_path: Path) -> None:
    (tmp_path / "a.kst").write_bytes(DOC[:-1])
    (tmp_path / "a.pdf").write_bytes(b"mine")
    with pytest.raises(DecryptionFailed):
        open_to_path(tmp_path / "a.kst", tmp_path / "a.pdf", _key, overwrite=True)
    assert (tmp_path / "a.pdf").read_bytes() == b"mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.kst", "a.pdf"]


def test_without_hard_links_falls_back_to_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_links(*_a: object, **_k: object) -> None:
        raise PermissionError("no hard links on this filesystem")

    monkeypatch.setattr(os, "link", no_links)
    (tmp_path / "a.kst").write_bytes(DOC)
    open_to_path(tmp_path / "a.kst", tmp_path / "a.pdf", _key)
    assert (tmp_path / "a.pdf").read_bytes() == PLAINTEXT
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.kst", "a.pdf"]
