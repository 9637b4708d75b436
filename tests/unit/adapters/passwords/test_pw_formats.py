"""Import/export: real-product samples, exact round trips over adversarial strings, refusals."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from keystead.adapters.passwords._entry import MAX_TIME, Entry, HistoryItem
from keystead.adapters.passwords._errors import CannotExport, MalformedFile
from keystead.adapters.passwords.formats import FORMATS, export_entries, import_entries
from keystead.core.errors import FormatError

SAMPLES = Path(__file__).with_name("samples")
NOW = 1_700_000_000_000


def ids() -> Callable[[], str]:
    counter = itertools.count(1)
    return lambda: f"id-{next(counter)}"


def export_bytes(fmt: str, entries: list[Entry]) -> bytes:
    """The file, with what the format cannot hold left out (tests of that are elsewhere)."""
    return export_entries(fmt, entries, lossy=True)[0]


def load(fmt: str, name: str) -> list[Entry]:
    return import_entries(fmt, (SAMPLES / name).read_bytes(), now=NOW, new_id=ids())


def test_registry_names_and_exports() -> None:
    import keystead.adapters.passwords.formats as formats

    assert list(FORMATS) == [
        "chrome",
        "firefox",
        "bitwarden-csv",
        "bitwarden-json",
        "keepassxc-csv",
        "kdbx",
        "lastpass-csv",
        "1pux",
    ]
    assert formats.__all__ == [
        "FORMATS",
        "FileSecrets",
        "Format",
        "Left",
        "Parser",
        "Skips",
        "export_entries",
        "import_entries",
    ]
    with pytest.raises(ValueError, match="unknown format"):
        import_entries("lastpass", b"", now=NOW)


# --- samples as the products write them --------------------------------------------------


def test_chrome_sample() -> None:
    a, b, c = load("chrome", "chrome.csv")
    assert (a.name, a.url, a.username, a.password, a.notes) == (
        "example.com",
        "https://example.com/login",
        "alice",
        'pa,ss "q"',
        "",
    )
    assert (b.name, b.username, b.password, b.notes) == (
        "  spaced  ",
        " bob ",
        '=HYPERLINK("x")',
        "line1\nline2",
    )
    assert (c.username, c.password) == ("zoë", "🔑")
    assert a.created == a.updated == NOW and a.id == "id-1"
    assert export_bytes("chrome", [a, b, c]) == (SAMPLES / "chrome.csv").read_bytes()


def test_chrome_without_note_column_is_read() -> None:
    [e] = import_entries("chrome", b"name,url,username,password\nn,u,x,y\n", now=NOW)
    assert (e.name, e.url, e.username, e.password, e.notes) == ("n", "u", "x", "y", "")


def test_firefox_sample() -> None:
    a, b = load("firefox", "firefox.csv")
    assert (a.url, a.username, a.password, a.created, a.updated) == (
        "https://example.com",
        "alice",
        'pa,ss "q"',
        1700000000000,
        1700000100000,
    )
    assert a.extras == {
        "firefox.formActionOrigin": "https://example.com",
        "firefox.guid": "{0b7c6f3e-0d4c-4c2e-9a52-1a2b3c4d5e6f}",
        "firefox.httpRealm": "",
        "firefox.timeLastUsed": "1700000500000",
    }
    assert b.extras["firefox.httpRealm"] == "Intranet" and b.password == "=1+1"
    out = export_bytes("firefox", [a, b])
    assert out == (SAMPLES / "firefox.csv").read_bytes()
    assert b"\r\n" in out and not out.endswith(b"\n")


def test_bitwarden_csv_sample() -> None:
    a, note = load("bitwarden-csv", "bitwarden.csv")
    assert a.folder == "Work" and a.notes == "line1\nline2"
    assert a.fields == (("PIN", "1234", "text"), ("security question", "the answer: yes", "text"))
    assert (a.url, a.other_urls) == ("https://example.com/login", ("https://example.org",))
    assert a.otpauth is not None and a.otpauth.startswith("otpauth://totp/")
    assert a.extras == {"bitwarden.favorite": "1", "bitwarden.reprompt": "0"}
    assert note.type == "note" and note.url == "" and note.otpauth is None
    assert export_bytes("bitwarden-csv", [a, note]) == (SAMPLES / "bitwarden.csv").read_bytes()


def test_bitwarden_json_sample() -> None:
    a, note = load("bitwarden-json", "bitwarden.json")
    assert (a.name, a.folder, a.username, a.password) == ("Example", "Work", "alice", 'pa,ss "q"')
    assert (a.created, a.updated) == (1704067199000, 1706933106789)
    assert a.history == (HistoryItem("password", "old one", 1704164645678),)
    assert a.fields == (("PIN", "1234", "hidden"),)
    assert json.loads(a.extras["bitwarden.urimatch"]) == [None, 1]
    assert a.extras["bitwarden.id"] == "0f2b7d5c-1a3e-4f60-8b9c-7d6e5f4a3b2c"
    assert note.type == "note" and note.notes == "just text"
    again = json.loads(export_bytes("bitwarden-json", [a, note]))
    original = json.loads((SAMPLES / "bitwarden.json").read_text())
    assert again["items"][0]["login"] == original["items"][0]["login"]
    assert again["items"][0]["passwordHistory"] == original["items"][0]["passwordHistory"]
    assert again["items"][1]["secureNote"] == {"type": 0}


def test_keepassxc_sample_from_keepassxc_cli_is_reproduced_byte_for_byte() -> None:
    data = (SAMPLES / "keepassxc.csv").read_bytes()  # keepassxc-cli 2.7.4 `export -f csv`
    spaced, mail = import_entries("keepassxc-csv", data, now=NOW)
    assert (spaced.name, spaced.username, spaced.password) == (
        "  spaced  ",
        "zoë 🔑",
        "=SUM(A1:A2)",
    )
    assert (mail.folder, mail.name, mail.password) == ("Email", 'My "Mail"', 'secret, "x"')
    assert mail.extras == {"keepassxc.icon": "0", "keepassxc.root": "Passwords"}
    assert export_bytes("keepassxc-csv", [spaced, mail]) == data


# --- exact round trips over adversarial strings ------------------------------------------

ADVERSARIAL = [
    "",
    " ",
    ",",
    '"',
    '""',
    "\n",
    "\r\n",
    "\r",
    "=1+2",
    "+cmd",
    "-2",
    "@x",
    " lead",
    "trail ",
    'a,"b"\n',
    "zoë",
    "🔑",
    "\u00a0",
    "\t",
    "\x00",
    ": ",
]
text = st.one_of(
    st.sampled_from(ADVERSARIAL),
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=30),
)
seconds = st.integers(0, MAX_TIME // 1000).map(lambda s: s * 1000)
millis = st.integers(0, MAX_TIME)


def _sort(pairs: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(pairs.items()))


@st.composite
def entries(draw: st.DrawFn) -> Entry:
    return Entry(
        id=draw(st.uuids()).hex,
        name=draw(text),
        url=draw(text),
        username=draw(text),
        password=draw(text),
        notes=draw(text),
        folder=draw(text),
        otpauth=draw(st.none() | text.filter(bool)),
        created=draw(millis),
        updated=draw(millis),
        other_urls=tuple(draw(st.lists(text, max_size=3))),
        fields=tuple(
            draw(st.lists(st.tuples(text, text, st.sampled_from(["text", "hidden"])), max_size=3))
        ),
        history=tuple(
            draw(
                st.lists(
                    st.builds(HistoryItem, st.sampled_from(["password", "notes"]), text, millis),
                    max_size=3,
                )
            )
        ),
    )


def _carried(fmt: str, e: Entry) -> tuple[object, ...]:
    x = e.extras
    if fmt == "chrome":
        return (e.name, e.url, e.username, e.password, e.notes)
    if fmt == "firefox":
        return (
            e.url,
            e.username,
            e.password,
            e.created,
            e.updated,
            x.get("firefox.timeLastUsed", str(e.updated)),
        )
    if fmt == "bitwarden-csv":
        return (
            e.name,
            e.url,
            e.other_urls,
            e.username,
            e.password,
            e.notes,
            e.otpauth,
            e.folder,
            tuple((n, v) for n, v, _ in e.fields),
        )
    if fmt == "bitwarden-json":
        return (
            e.name,
            e.url,
            e.other_urls,
            e.username,
            e.password,
            e.notes,
            e.otpauth,
            e.folder,
            e.fields,
            e.created,
            e.updated,
            [(h.value, h.replaced) for h in e.history if h.field == "password"],
        )
    assert fmt == "keepassxc-csv"
    return (
        e.name,
        e.url,
        e.username,
        e.password,
        e.notes,
        e.otpauth,
        e.folder,
        e.created // 1000,
        e.updated // 1000,
    )


@pytest.mark.parametrize("fmt", [f for f in FORMATS if FORMATS[f].export is not None])
@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(batch=st.lists(entries(), max_size=4))
def test_round_trip_is_exact_for_every_field_the_format_carries(
    fmt: str, batch: list[Entry]
) -> None:
    try:
        data = export_bytes(fmt, batch)
    except CannotExport as e:
        # Only the Bitwarden CSV's ambiguous joins may be refused.
        assert fmt == "bitwarden-csv", e
        return
    back = import_entries(fmt, data, now=NOW)
    assert [_carried(fmt, e) for e in back] == [_carried(fmt, e) for e in batch]
    assert export_bytes(fmt, back) == data  # and the file itself is stable


def test_bitwarden_csv_refuses_what_it_cannot_carry() -> None:
    with pytest.raises(CannotExport, match="comma"):
        export_bytes("bitwarden-csv", [Entry(id="a", url="https://x/?a=1,2")])
    with pytest.raises(CannotExport, match="custom field"):
        export_bytes("bitwarden-csv", [Entry(id="a", fields=(("k", "two\nlines", "text"),))])


# --- malformed files: typed error, the right line, nothing imported ----------------------

CHROME_HEAD = b"name,url,username,password,note\n"
MALFORMED = [
    ("chrome", CHROME_HEAD + b"a,b,c,d,e\na,b,c,d,e,f\n", 3, "6 fields"),
    ("chrome", CHROME_HEAD + b'a,b,"c\nc",d,e\na,b"x,c,d,e\n', 4, "quote inside"),
    ("chrome", CHROME_HEAD + b'a,b,c,d,"never closed\n\n', 2, "never closed"),
    ("chrome", CHROME_HEAD + b'a,b,c,d,"e"x\n', 2, "after a closing quote"),
    ("chrome", CHROME_HEAD + b"a,b,c,d,e\n\na,b,c,d,e\n", 3, "empty line"),
    ("chrome", CHROME_HEAD + b"a,b,c,d,e\na,b,\xff,d,e\n", 3, "UTF-8"),
    ("chrome", b"title,link,username,password\n", 1, "header has no 'url'"),
    ("chrome", b"name,url,username,password,url\n", 1, "twice"),
    ("chrome", b"", 1, "empty"),
    (
        "firefox",
        (SAMPLES / "firefox.csv").read_bytes().replace(b'"1600000000000"', b'"soon"', 1),
        3,
        "timeCreated",
    ),
    (
        "bitwarden-csv",
        (SAMPLES / "bitwarden.csv").read_bytes().replace(b",note,", b",card,"),
        5,
        "type",
    ),
    (
        "bitwarden-csv",
        (SAMPLES / "bitwarden.csv").read_bytes().replace(b"PIN: 1234", b"PIN"),
        2,
        "': '",
    ),
    (
        "bitwarden-json",
        b'{"encrypted": false,\n "folders": [],\n "items": [\n  {"type": 1,\n',
        5,
        "Expecting",
    ),
    ("bitwarden-json", b'{"encrypted": true, "items": []}', 1, "account-restricted"),
    ("bitwarden-json", b'{"items": [' * 40 + b"]}" * 40, 1, "deeper than"),
    ("bitwarden-json", b'{"items": [], "n": 1' + b"0" * 5000 + b"}", 1, "5001 characters"),
    (
        "bitwarden-json",
        b'{"encrypted": false,\n"folders": [],\n"items": [\n{"type": 1, "id": "x",'
        b' "name": "a", "login": {}},\n  {"type": 1, "id": "y", "name": "b",'
        b' "login": {"uris": 1}}]}',
        5,
        "item 2",
    ),
    (
        "bitwarden-json",
        (SAMPLES / "bitwarden.json")
        .read_bytes()
        .replace(b'"2024-02-03T04:05:06.789Z"', b'"yesterday"', 1),
        10,
        "revisionDate",
    ),
    (
        "keepassxc-csv",
        (SAMPLES / "keepassxc.csv")
        .read_bytes()
        .replace(b'"2026-11-27T07:00:48Z"', b'"27/11/2026"', 1),
        3,
        "Last Modified",
    ),
]


@pytest.mark.parametrize(("fmt", "data", "line", "problem"), MALFORMED)
def test_malformed_file_is_refused_with_its_line(
    fmt: str, data: bytes, line: int, problem: str
) -> None:
    with pytest.raises(MalformedFile) as caught:
        import_entries(fmt, data, now=NOW)
    assert caught.value.line == line, str(caught.value)
    assert problem in caught.value.problem
    assert caught.value.format_name == fmt
    assert isinstance(caught.value, FormatError)
    assert f"line {line}:" in str(caught.value)


def test_a_bad_last_row_means_nothing_is_imported() -> None:
    made: list[str] = []

    def new_id() -> str:
        made.append("x")
        return f"id-{len(made)}"

    good = b"n,u,x,y,z\n" * 50
    with pytest.raises(MalformedFile) as caught:
        import_entries("chrome", CHROME_HEAD + good + b'bad,"row\n', now=NOW, new_id=new_id)
    assert caught.value.line == 52
    assert made == []  # the whole file is parsed before a single entry is built


def test_bom_is_accepted_and_crlf_rows_read() -> None:
    data = b"\xef\xbb\xbf" + CHROME_HEAD.replace(b"\n", b"\r\n") + b"a,b,c,d,e\r\n"
    [e] = import_entries("chrome", data, now=NOW)
    assert (e.name, e.notes) == ("a", "e")
