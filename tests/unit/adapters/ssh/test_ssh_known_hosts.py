"""known_hosts parsing and matching, checked against ssh-keygen's own hashing and lookup."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from keystead.adapters.ssh._keys import generate_device_key
from keystead.adapters.ssh._known_hosts import (
    HostKeyStatus,
    check_host_key,
    hash_host,
    host_lookup_name,
    known_hosts_command_output,
    known_hosts_line,
    parse_known_hosts,
    split_lookup_name,
)
from keystead.core.errors import FormatError

A = generate_device_key("a").public
B = generate_device_key("b").public
CA = generate_device_key("ca").public


def test_plain_hashed_markers_and_ports() -> None:
    text = f"""# comment

example.com,192.0.2.1 {A.line()}
[git.example.com]:2222 {B.line()}
{hash_host("hidden.example")} {A.line()}
@cert-authority *.corp {CA.line()}
@revoked * {B.line()}
"""
    entries = parse_known_hosts(text)
    assert [e.line_number for e in entries] == [3, 4, 5, 6, 7]
    assert entries[0].matches("EXAMPLE.com") and entries[0].matches("192.0.2.1")
    assert not entries[0].matches("[example.com]:2222")
    assert entries[1].matches(host_lookup_name("git.example.com", 2222))
    assert not entries[1].matches("git.example.com")
    assert entries[2].matches("hidden.example") and not entries[2].matches("other")
    assert entries[3].marker == "@cert-authority" and entries[3].matches("build.corp")
    assert check_host_key(entries, "example.com", 22, A) is HostKeyStatus.MATCH
    assert check_host_key(entries, "git.example.com", 2222, B) is HostKeyStatus.REVOKED
    assert check_host_key(entries, "example.com", 22, generate_device_key("").public) is (
        HostKeyStatus.CHANGED
    )
    assert check_host_key(entries, "nowhere", 22, A) is HostKeyStatus.UNKNOWN


def test_wildcards_and_negation() -> None:
    (entry,) = parse_known_hosts(f"*.example.com,!bad.example.com,host?? {A.line()}")
    assert entry.matches("a.example.com") and entry.matches("host12")
    assert not entry.matches("bad.example.com") and not entry.matches("host1")


def test_hashing_matches_ssh_keygen(tmp_path: Path) -> None:
    plain = tmp_path / "known_hosts"
    plain.write_text(f"[srv.example]:2200 {A.line()}\nsrv.example {B.line()}\n")
    subprocess.run(["ssh-keygen", "-q", "-H", "-f", str(plain)], check=True, capture_output=True)
    entries = parse_known_hosts(plain.read_text())
    assert all(e.hashed is not None for e in entries)
    assert check_host_key(entries, "srv.example", 2200, A) is HostKeyStatus.MATCH
    assert check_host_key(entries, "srv.example", 22, B) is HostKeyStatus.MATCH
    # and ssh-keygen finds what we hash
    ours = tmp_path / "ours"
    ours.write_text(known_hosts_line(["[h.example]:2022"], A, hashed=True) + "\n")
    found = subprocess.run(
        ["ssh-keygen", "-F", "[h.example]:2022", "-f", str(ours)], capture_output=True, text=True
    )
    assert found.returncode == 0 and A.line().split()[1] in found.stdout


@pytest.mark.parametrize(
    "line",
    [
        "host-without-key",
        f"@bogus host {A.line()}",
        f"|1|AAAA|BBBB {A.line()}",
        f"|1|{'A' * 28}|not-base64! {A.line()}",
        "host ssh-ed25519 AAAAC3NzaC1lZDI1NTE5",
        f"host ssh-rsa {A.line().split()[1]}",
        f",host {A.line()}",
    ],
    ids=["no-key", "marker", "hash-short", "hash-bad", "key-cut", "rsa", "empty-host"],
)
def test_bad_lines(line: str) -> None:
    with pytest.raises(FormatError):
        parse_known_hosts(line)
    assert parse_known_hosts(f"{line}\nok {A.line()}", skip_invalid=True)[0].patterns == ("ok",)


def test_command_output_and_lookup_names() -> None:
    entries = parse_known_hosts(f"[srv]:2222 {A.line()}\nsrv {B.line()}\n@revoked * {CA.line()}\n")
    out = known_hosts_command_output(entries, "[srv]:2222")
    assert out == f"[srv]:2222 {A.line()}\n@revoked * {CA.line()}\n"
    assert split_lookup_name("[SRV]:2222") == ("srv", 2222)
    assert split_lookup_name("srv") == ("srv", 22)
    for bad in ["", "[srv]", "a b", "[srv]:99999"]:
        with pytest.raises(FormatError):
            split_lookup_name(bad)
    with pytest.raises(ValueError):
        known_hosts_line(["a,b"], A)
    assert known_hosts_line(["h"], A, marker="@revoked") == f"@revoked h {A.line()}"
