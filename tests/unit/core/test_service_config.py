"""The service's configuration: the file, the variables, and what the defaults resolve to."""

from __future__ import annotations

from pathlib import Path

import pytest
from keystead.core.errors import FormatError
from keystead.core.service.config import SQLITE_THREADS, ServiceConfig

DEPLOY = Path(__file__).resolve().parents[3] / "deploy" / "keystead.toml"


def test_the_shipped_file_loads_and_variables_override_it() -> None:
    cfg = ServiceConfig.load(DEPLOY, environ={"KEYSTEAD_MAX_WAIT": "30"})
    assert cfg.trust_forwarded_for is True  # set by the file
    assert cfg.max_wait == 30  # the variable wins
    assert cfg.db_threads == ServiceConfig().db_threads == 0


def test_database_threads_follow_the_database_unless_set() -> None:
    auto = ServiceConfig()
    assert auto.threads_for("sqlite") == SQLITE_THREADS
    assert auto.threads_for("postgresql") == auto.db_pool_size + auto.db_pool_overflow
    pinned = ServiceConfig.load(environ={"KEYSTEAD_DB_THREADS": "7"})
    assert pinned.threads_for("sqlite") == pinned.threads_for("postgresql") == 7


@pytest.mark.parametrize(
    ("variable", "value", "words"),
    [
        ("KEYSTEAD_DB_THREADS", "-1", "must not be negative"),
        ("KEYSTEAD_DB_THREADS", "many", "expected int"),
        ("KEYSTEAD_ACCESS_LOG", "maybe", "expected true or false"),
    ],
)
def test_bad_values_are_one_line(variable: str, value: str, words: str) -> None:
    with pytest.raises(FormatError, match=words):
        ServiceConfig.load(environ={variable: value})


def test_unknown_keys_in_the_file_are_refused(tmp_path: Path) -> None:
    bad = tmp_path / "k.toml"
    bad.write_text("[service]\ndb_thread = 4\n")
    with pytest.raises(FormatError, match="unknown configuration key 'db_thread'"):
        ServiceConfig.load(bad, environ={})
