"""``keystead totp`` across devices: a secret added on one device gives, on another, the codes
Debian's oathtool computes; and codes keep coming from the cache while the service is down."""

from __future__ import annotations

import subprocess
import sys

URI = "otpauth://totp/Example:alice@example.com?secret=JBSWY3DPEHPK3PXP&issuer=Example"
HOTP = "otpauth://hotp/Counter:bob?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Counter&counter=5"


def oathtool(*args: str) -> str:
    return subprocess.run(
        ["oathtool", "-b", *args], capture_output=True, text=True, check=True
    ).stdout.strip()


def test_add_on_one_device_code_on_another_matches_oathtool(make_account, service):
    acct = make_account("totp")
    phone = acct.join("phone", scopes=["totp"])
    acct.admin.run("totp", "add", URI)
    dup = acct.admin.run("totp", "add", URI, check=False)
    assert dup.returncode == 1 and "already exists" in dup.stderr
    listed = phone.json("totp", "list", "--json")
    assert [c["name"] for c in listed] == ["Example:alice@example.com"]
    assert "secret" not in listed[0] and "JBSWY3DPEHPK3PXP" not in str(listed)
    for at in (59, 1_111_111_109, 2_000_000_000):
        expected = oathtool("--totp", "-N", f"@{at}", "JBSWY3DPEHPK3PXP")
        assert phone.run("totp", "code", "Example", "--at", str(at)).stdout.strip() == expected

    # HOTP: each code shown once, the counter synced back for every device
    phone.run("totp", "add", HOTP)
    secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
    assert phone.run("totp", "code", "bob").stdout.strip() == oathtool("-c", "5", secret)
    assert acct.admin.run("totp", "code", "bob").stdout.strip() == oathtool("-c", "6", secret)

    qr = phone.run("totp", "qr", "Example").stdout
    assert "█" in qr or "▀" in qr

    # offline: the cache still gives codes
    service.stop()
    try:
        off = phone.run("totp", "code", "Example", "--at", "59")
        assert off.stdout.strip() == oathtool("--totp", "-N", "@59", "JBSWY3DPEHPK3PXP")
        assert "unreachable" in off.stderr
        assert phone.run("totp", "add", URI.replace("alice", "carol"), check=False).returncode == 1
    finally:
        service.start()

    acct.admin.run("totp", "rm", "Example:alice@example.com")
    assert [c["name"] for c in phone.json("totp", "list", "--json")] == ["Counter:bob"]


def test_with_the_unlock_agent_codes_come_from_it_and_match_oathtool(make_account):
    phone = make_account("totp").admin
    phone.run("totp", "add", URI)
    phone.run("totp", "add", HOTP)
    phone.run("unlock", "--for", "2m")
    try:
        env = phone.env()
        del env["KEYSTEAD_PASSPHRASE"]
        got = subprocess.run(
            [
                sys.executable,
                "-X",
                "importtime",
                "-m",
                "keystead.core.launch",
                "totp",
                "code",
                "Example",
                "--at",
                "59",
            ],
            capture_output=True,
            text=True,
            env=env,
        )
        assert got.returncode == 0, got.stderr[-2000:]
        assert got.stdout.strip() == oathtool("--totp", "-N", "@59", "JBSWY3DPEHPK3PXP")
        assert "| click" not in got.stderr  # the agent answered: the launcher never loaded Click
        # HOTP through the agent still advances the counter, once per code
        secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
        assert phone.run("totp", "code", "bob", env=env).stdout.strip() == oathtool(
            "-c", "5", secret
        )
        assert phone.run("totp", "code", "bob", env=env).stdout.strip() == oathtool(
            "-c", "6", secret
        )
    finally:
        phone.run("lock")


STEAM_SECRET = "63BEDWCQZKTQWPESARIERL5DTTQFCJTK"  # KeePassXC's test secret, from the Steam app


def test_steam_codes_and_every_parameter_honoured_or_named(make_account):
    acct = make_account("totp")
    phone = acct.join("phone", scopes=["totp"])
    acct.admin.run("totp", "add", f"steam://{STEAM_SECRET}", "--account", "gamer")
    acct.admin.run("totp", "add", f"otpauth://totp/Valve:other?secret={STEAM_SECRET}"
                   "&issuer=Valve&digits=5&period=30&encoder=steam")  # fmt: skip
    listed = {c["name"]: c for c in phone.json("totp", "list", "--json")}
    assert listed["Steam:gamer"]["encoder"] == "steam" and listed["Steam:gamer"]["digits"] == 5
    for name in ("gamer", "Valve:other"):
        for at, code in ((1511200518, "FR8RV"), (1511200714, "9P3VP")):
            assert phone.run("totp", "code", name, "--at", str(at)).stdout.strip() == code

    # An icon URL is kept and changes nothing: the code is oathtool's.
    icon = "&image=https%3A%2F%2Fa.example%2Fi.png"
    acct.admin.run("totp", "add", URI.replace("alice", "dave") + icon)
    assert phone.run("totp", "code", "dave@example.com", "--at", "59").stdout.strip() == oathtool(
        "--totp", "-N", "@59", "JBSWY3DPEHPK3PXP"
    )

    for bad, words in [
        (URI.replace("alice", "erin") + "&lock=true", "otpauth parameter 'lock' is not supported"),
        (URI.replace("alice", "erin") + "&encoder=motp", "encoder 'motp' is not supported"),
    ]:
        result = acct.admin.run("totp", "add", bad, check=False)
        assert result.returncode == 1 and len(result.stderr.splitlines()) == 1, result.stderr
        assert words in result.stderr
    wrong = acct.admin.run("totp", "add", URI, "--account", "x", check=False)
    assert wrong.returncode == 1 and "steam://" in wrong.stderr
