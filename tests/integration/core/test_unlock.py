"""The unlock agent: one passphrase, then commands run without it until `keystead lock`."""

from __future__ import annotations

import stat


def test_unlock_then_lock(make_account):
    acct = make_account("unlock")
    home = acct.admin
    home.run("unlock", "--for", "60s")
    try:
        sock = home.path / "agent.sock"
        assert stat.S_IMODE(sock.stat().st_mode) == 0o600
        env = home.env()
        del env["KEYSTEAD_PASSPHRASE"]
        shown = home.run("account", "show", "--json", env=env)
        assert acct.name in shown.stdout
    finally:
        home.run("lock")
    env = home.env()
    del env["KEYSTEAD_PASSPHRASE"]
    locked = home.run("account", "show", env=env, check=False)
    assert locked.returncode != 0
    assert "locked" in locked.stderr and locked.stderr.count("\n") == 1


def test_unlock_refuses_a_bad_duration_and_a_wrong_passphrase(make_account):
    acct = make_account("unlock")
    bad = acct.admin.run("unlock", "--for", "soon", check=False)
    assert bad.returncode != 0 and "duration" in bad.stderr
    env = acct.admin.env(KEYSTEAD_PASSPHRASE="wrong")
    wrong = acct.admin.run("unlock", env=env, check=False)
    assert wrong.returncode != 0 and "passphrase" in wrong.stderr
    assert not (acct.admin.path / "agent.sock").exists()
