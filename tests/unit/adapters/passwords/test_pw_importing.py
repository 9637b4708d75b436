"""Rerunnable imports: ids from the source, matching what the vault holds, bounded batches."""

from __future__ import annotations

from keystead.adapters.passwords._entry import Entry
from keystead.adapters.passwords._importing import batches, match_key, plan_import, stable_ids
from keystead.adapters.passwords.formats import import_entries

NOW = 1_700_000_000_000
CSV = b"name,url,username,password\nA,https://a.test/,me,pw\nB,https://b.test/,you,pw2\n"


def test_ids_depend_on_the_source_not_on_chance() -> None:
    first = stable_ids(import_entries("chrome", CSV, now=NOW))
    second = stable_ids(import_entries("chrome", CSV, now=NOW + 5))
    assert [e.id for e in first] == [e.id for e in second]
    assert len({e.id for e in first}) == 2
    with_guid = Entry(id="x", url="https://a.test/", extra=(("firefox.guid", "{g}"),))
    moved = Entry(id="y", url="https://elsewhere.test/", extra=(("firefox.guid", "{g}"),))
    [a], [b] = stable_ids([with_guid]), stable_ids([moved])
    assert a.id == b.id  # the source's id wins over the content
    assert a.revision != with_guid.revision  # the cached hash follows the new id


def test_plan_skips_what_the_vault_has_by_id_or_by_login() -> None:
    entries = stable_ids(import_entries("chrome", CSV, now=NOW))
    assert plan_import(entries, set(), list).new == entries
    again = plan_import(entries, {e.id for e in entries}, lambda: [])
    assert (again.new, again.present) == ([], 2)
    same_login = Entry(id="other", url="https://a.test/", username="me", password="pw")
    plan = plan_import(entries, {"other"}, lambda: [same_login])
    assert [e.name for e in plan.new] == ["B"] and plan.present == 1
    twice = plan_import(entries + entries, set(), list)
    assert len(twice.new) == 2 and twice.present == 2


def test_notes_match_on_their_content_not_on_empty_logins() -> None:
    a = Entry(id="a", type="note", name="one", notes="x")
    b = Entry(id="b", type="note", name="two", notes="y")
    assert match_key(a) != match_key(b)


def test_batches_bound_count_and_bytes() -> None:
    small = [Entry(id=f"s{i}", notes="x" * 10) for i in range(25)]
    assert [len(c) for c in batches(small, size=10)] == [10, 10, 5]
    big = [Entry(id=f"b{i}", notes="x" * 1000) for i in range(5)]
    sizes = [len(c) for c in batches(big, size=100, max_bytes=3000)]  # ~1,400 bytes each
    assert sizes == [2, 2, 1]
    huge = [Entry(id="h", notes="x" * 5000), Entry(id="t")]
    assert [len(c) for c in batches(huge, size=100, max_bytes=2500)] == [1, 1]
    assert all(data == e.to_bytes() for c in batches(small) for e, data in c)
