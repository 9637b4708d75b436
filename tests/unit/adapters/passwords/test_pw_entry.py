"""Entry: valid from birth, versioned bytes, and a merge that never loses an edit silently."""

from __future__ import annotations

import dataclasses
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from keystead.adapters.passwords._entry import MAX_LINEAGE, Entry, HistoryItem
from keystead.adapters.passwords._merge import merge
from keystead.core.errors import FormatError, UnsupportedVersion

BASE = Entry(
    id="e1",
    name="Example",
    url="https://example.com",
    username="alice",
    password="one",
    created=1_000,
    updated=1_000,
)


def test_bytes_round_trip_and_version() -> None:
    e = BASE.edit(
        2_000, password="two", fields=(("PIN", "1", "hidden"),), otpauth="otpauth://totp/x"
    )
    assert Entry.from_bytes(e.to_bytes()) == e
    doc = json.loads(e.to_bytes())
    assert doc["v"] == 2 and doc["entry"]["history"] == [["password", "one", 2_000, False]]


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"\xff", FormatError),
        (b"[]", FormatError),
        (b'{"v": 1, "entry": {}}', UnsupportedVersion),
        (b'{"v": 3, "entry": {}}', UnsupportedVersion),
        (b'{"v": true, "entry": {}}', FormatError),
        (b'{"v": 2, "entry": {"id": "x"}}', FormatError),
    ],
)
def test_bad_bytes_are_refused(data: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        Entry.from_bytes(data)


def test_wrong_types_inside_are_a_format_error() -> None:
    doc = json.loads(BASE.to_bytes())
    for key, value in [
        ("created", -1),
        ("created", 1.5),
        ("username", 5),
        ("otpauth", ""),
        ("history", [["password", "x", 1]]),
        ("had_conflict", 0),
    ]:
        bad = json.loads(json.dumps(doc))
        bad["entry"][key] = value
        with pytest.raises(FormatError):
            Entry.from_bytes(json.dumps(bad).encode())


def test_construction_checks_invariants() -> None:
    with pytest.raises(ValueError):
        Entry(id="")
    with pytest.raises(ValueError):
        Entry(id="x", password="\ud800")
    with pytest.raises(ValueError):
        Entry(id="x", extra=(("b", ""), ("a", "")))
    with pytest.raises(TypeError):
        Entry(id="x", fields=(("a",),))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="cannot edit"):
        BASE.edit(5, id="other")


def test_edit_keeps_password_history_and_lineage() -> None:
    e = BASE.edit(2_000, password="two").edit(3_000, notes="n")
    assert [h.value for h in e.history] == ["one"]
    assert e.updated == 3_000 and len(e.lineage) == 2 and BASE.revision in e.lineage


def test_revision_is_content_and_ignores_lineage() -> None:
    assert BASE.revision == dataclasses.replace(BASE, lineage=("abc",)).revision
    assert BASE.revision != dataclasses.replace(BASE, notes="x").revision


def test_fast_forward_is_not_a_conflict() -> None:
    newer = BASE.edit(2_000, password="two")
    assert merge(BASE, newer) == newer
    assert merge(newer, BASE) == newer
    assert not merge(BASE, newer).had_conflict


def test_concurrent_edits_keep_the_later_and_put_the_earlier_in_history() -> None:
    laptop = BASE.edit(2_000, password="from-laptop")
    phone = BASE.edit(3_000, password="from-phone", notes="phone note")
    merged = merge(laptop, phone)
    assert merged.password == "from-phone" and merged.notes == "phone note"
    assert merged.had_conflict
    conflicts = {(h.field, h.value) for h in merged.history if h.conflict}
    assert conflicts == {("password", "from-laptop"), ("notes", "")}
    assert ("password", "one") in {(h.field, h.value) for h in merged.history}
    assert merge(phone, laptop) == merged
    # Both devices then agree, and a later merge with either side is a fast-forward.
    assert merge(merged, laptop) == merged and merge(phone, merged) == merged


def test_same_change_on_two_devices_is_not_a_conflict() -> None:
    a = BASE.edit(2_000, username="bob")
    b = BASE.edit(2_500, username="bob")
    merged = merge(a, b)
    assert merged.username == "bob" and not merged.had_conflict


def test_merge_of_different_entries_is_misuse() -> None:
    with pytest.raises(ValueError):
        merge(BASE, dataclasses.replace(BASE, id="e2"))


def test_lineage_is_bounded() -> None:
    e = BASE
    for t in range(MAX_LINEAGE + 10):
        e = e.edit(2_000 + t, notes=str(t))
    assert len(e.lineage) == MAX_LINEAGE
    assert Entry.from_bytes(e.to_bytes()) == e


text = st.text(max_size=8)
edits = st.fixed_dictionaries(
    {},
    optional={"password": text, "username": text, "notes": text, "url": text, "folder": text},
)


@settings(max_examples=300)
@given(a=edits, b=edits, ta=st.integers(1_001, 10_000), tb=st.integers(1_001, 10_000))
def test_merge_never_loses_either_edit(
    a: dict[str, str], b: dict[str, str], ta: int, tb: int
) -> None:
    left, right = BASE.edit(ta, **a), BASE.edit(tb, **b)
    merged = merge(left, right)
    assert merged == merge(right, left)
    assert Entry.from_bytes(merged.to_bytes()) == merged
    kept = {(h.field, h.value) for h in merged.history}
    for side in (left, right):
        for field in ("password", "username", "notes", "url", "folder"):
            value = getattr(side, field)
            assert getattr(merged, field) == value or (field, value) in kept
        assert set(side.history) <= set(merged.history)
    if left.revision != right.revision:
        assert merged.had_conflict == any(
            getattr(left, f) != getattr(right, f)
            for f in ("password", "username", "notes", "url", "folder")
        )


def test_history_item_checks() -> None:
    with pytest.raises(ValueError):
        HistoryItem("password", "x", -1)
    with pytest.raises(TypeError):
        HistoryItem("password", "x", 1, conflict=1)  # type: ignore[arg-type]
