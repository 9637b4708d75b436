"""The name record and opaque collection ids, without a service."""

from __future__ import annotations

import pytest
from keystead.core import FormatError, UnsupportedVersion, canonical_json
from keystead.core.names import Names, is_opaque, new_collection_id


def test_new_ids_are_random_hex_under_the_prefix() -> None:
    a, b = new_collection_id("documents/"), new_collection_id("documents/")
    assert a != b and is_opaque(a, "documents/") and len(a) == len("documents/") + 32
    assert not is_opaque("documents/board", "documents/")
    assert not is_opaque(a, "messages/group/")
    with pytest.raises(ValueError):
        new_collection_id("documents")


def test_the_record_maps_both_ways_and_round_trips() -> None:
    lid, gid = "documents/" + "a" * 32, "messages/group/" + "b" * 32
    names = Names().with_name(lid, "board").with_name(gid, "board")  # one name, two kinds
    assert names.id_of("documents/", "board") == lid
    assert names.id_of("messages/group/", "board") == gid
    assert names.id_of("documents/", "other") is None
    assert (names.display(lid), names.display(gid)) == ("documents/board", "messages/group/board")
    assert names.display("passwords") == "passwords"
    assert names.collection_for("messages/group/board") == gid
    again = Names.from_bytes(names.to_bytes(), 3)
    assert (again.names, again.version) == (names.names, 3)


def test_a_bad_record_is_refused() -> None:
    with pytest.raises(UnsupportedVersion):
        Names.from_bytes(canonical_json({"v": 2, "names": {}}), 1)
    for bad in (
        {"v": 1},
        {"v": 1, "names": [], "x": 1},
        {"v": 1, "names": {"documents/" + "a" * 32: "line\nbreak"}},
        {"v": 1, "names": {"documents/" + "a" * 32: ""}},
        {"v": 1, "names": {"Bad Collection": "x"}},
    ):
        with pytest.raises(FormatError):
            Names.from_bytes(canonical_json(bad), 1)
