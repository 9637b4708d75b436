"""``keystead confirm``: relying parties ask, the account's devices answer, signed.

Exit status of ``confirm request``: 0 approved (verified), 1 denied (or another
error), 2 expired, 3 denied and reported as "not me", 4 an answer that did not
verify, 5 the service serves a chain that is not the pinned account's (another
account key, a rollback or fork) or not the ``--fingerprint`` given.
"""

from __future__ import annotations

import sys
from typing import Any

import click
from keystead.core.cli import die, iso_time, json_option, open_device, print_json
from keystead.core.client import path
from keystead.core.errors import Conflict, KeysteadError, VerificationError
from keystead.core.text import printable

from ._wire import check_rp_name, new_rp_token, token_hash

__all__ = ["confirm"]

EXIT = {"approved": 0, "denied": 1, "expired": 2, "reported": 3}
EXIT_REFUSED = 4
EXIT_PIN = 5


@click.group("confirm")
def confirm() -> None:
    """Confirmation prompts: relying parties ask, this account's devices answer."""


# ------------------------------------------------------------------ account owner
@confirm.command("allow")
@click.argument("rp")
def allow(rp: str) -> None:
    """Let relying party RP send prompts; prints its token once (a new one replaces the old)."""
    check_rp_name(rp)
    token = new_rp_token(rp)
    with open_device() as dev:
        dev.client.put(path("confirm", dev.account, "rps", rp), {"token_sha256": token_hash(token)})
    print(f"relying party {rp} may now send prompts to {dev.address}", file=sys.stderr)
    print(f"rp token: {token}")


@confirm.command("rps")
@json_option
def rps(json_out: bool) -> None:
    """The relying parties allowed to send prompts (and how often people reported them)."""
    with open_device() as dev:
        items = dev.client.get(path("confirm", dev.account, "rps"))["rps"]
    out = [
        {"name": r["name"], "allowed": iso_time(r["created"]), "reports": r["reports"]}
        for r in items
    ]
    if json_out:
        print_json(out)
        return
    for r in out:
        print(f"{r['name']}  allowed {r['allowed']}  reported as not me: {r['reports']}")


@confirm.command("disallow")
@click.argument("rp")
def disallow(rp: str) -> None:
    """Revoke RP's token: its next prompt is refused."""
    with open_device() as dev:
        dev.client.delete(path("confirm", dev.account, "rps", check_rp_name(rp)))
    print(f"relying party {rp} may no longer send prompts")


# ------------------------------------------------------------------ relying party
@confirm.command("request")
@click.argument("account")
@click.option("--server", required=True, help="The account's service URL")
@click.option(
    "--rp-token",
    required=True,
    envvar="KEYSTEAD_RP_TOKEN",
    help="The token 'keystead confirm allow' printed (or KEYSTEAD_RP_TOKEN)",
)
@click.option("--message", required=True, help="What the person is asked to confirm")
@click.option(
    "--wait",
    type=click.IntRange(1, 3600),
    default=120,
    show_default=True,
    help="Seconds the prompt lives and this command waits",
)
@click.option(
    "--number-matching/--no-number-matching",
    default=True,
    show_default=True,
    help="Print a two-digit number the person must pick on the device, among "
    "9 choices (a blind guess wins 1 time in 9)",
)
@click.option(
    "--fingerprint",
    default=None,
    help="The account key (keystead account show); without it the key is pinned on "
    "first use in KEYSTEAD_HOME/rp-pins (or the platform data folder)",
)
@click.option(
    "--insecure-http",
    is_flag=True,
    help="Allow plain http:// to a service that is not on a loopback address",
)
def request(
    account: str,
    server: str,
    rp_token: str,
    message: str,
    wait: int,
    number_matching: bool,
    fingerprint: str | None,
    insecure_http: bool,
) -> None:
    """Ask ACCOUNT to confirm; prints approved (exit 0), denied, or expired (non-zero)."""
    from ._client import RelyingPartyClient
    from ._pins import PinMismatch, check_service_url, default_pin_folder

    try:
        check_service_url(server, insecure_http=insecure_http)
    except ValueError as e:
        die(str(e))
    pins = None if fingerprint else default_pin_folder()
    try:
        with RelyingPartyClient(
            server,
            account,
            rp_token,
            pins=pins,
            fingerprint=fingerprint,
            insecure_http=insecure_http,
        ) as rp:
            pending = rp.start(message, lifetime=wait, number_matching=number_matching)
            if pending.number is not None:
                print(f"number: {pending.number}", flush=True)
                print(
                    "the person must pick this number on their device", file=sys.stderr, flush=True
                )
            try:
                outcome = rp.wait(pending)
            except PinMismatch:
                raise
            except VerificationError as e:
                print("denied", flush=True)
                die(f"the answer did not verify: {printable(e, 300)}", EXIT_REFUSED)
    except PinMismatch as e:
        die(str(e), EXIT_PIN)
    if outcome.reported:
        print("denied")
        print("keystead: the person reported this request as not made by them", file=sys.stderr)
    else:
        print(outcome.status)
    raise SystemExit(EXIT[outcome.status])


# ------------------------------------------------------------------ phone
def _source() -> Any:
    from ._phone import DevicePromptSource

    return DevicePromptSource


def _prompt_json(r: Any) -> dict[str, Any]:
    p = r.pending
    return {
        "id": p.request_id,
        "rp": p.rp,
        "message": p.message,
        "created": iso_time(p.created),
        "expires": iso_time(p.expires),
        "choices": list(p.choices),
    }


@confirm.command("list")
@json_option
def list_(json_out: bool) -> None:
    """Prompts waiting for an answer from this account."""
    with open_device() as dev:
        out = [_prompt_json(r) for r in _source()(dev).received()]
    if json_out:
        print_json(out)
        return
    if not out:
        print("no pending prompts", file=sys.stderr)
    for p in out:
        choices = f"  pick one of {', '.join(map(str, p['choices']))}" if p["choices"] else ""
        print(
            f"{p['id']}  {printable(p['rp'], 100)}: {printable(p['message'], 1000)}  "
            f"(expires {p['expires']}){choices}"
        )


@confirm.command("approve")
@click.argument("request_id")
@click.option(
    "--number",
    type=click.IntRange(10, 99),
    default=None,
    help="The number the relying party shows (number matching)",
)
def approve(request_id: str, number: int | None) -> None:
    """Approve a prompt (signed by this device)."""
    with open_device() as dev:
        src = _source()(dev)
        rp = src.find(request_id).prompt.rp
        if src.find(request_id).prompt.choices and number is None:
            die(f"this prompt uses number matching: pass --number with the number {rp} shows")
        _send(lambda: src.approve(request_id, number))
    print(f"approved: {printable(rp, 100)}")


@confirm.command("deny")
@click.argument("request_id")
@click.option("--report", is_flag=True, help="Also report the request as not made by you")
def deny(request_id: str, report: bool) -> None:
    """Deny a prompt (signed by this device)."""
    with open_device() as dev:
        src = _source()(dev)
        rp = src.find(request_id).prompt.rp
        _send(lambda: src.deny(request_id, report))
    print(f"denied{' and reported' if report else ''}: {printable(rp, 100)}")


def _send(action: Any) -> None:
    try:
        action()
    except Conflict:
        die("this request was already answered (by another device?)")


@confirm.command("watch")
@click.option("--once", is_flag=True, help="Exit after answering one prompt")
def watch(once: bool) -> None:
    """Wait for prompts and answer each on this terminal."""
    from ._confirm_protocol import Decision

    with open_device() as dev:
        src = _source()(dev)
        pending = src.received()
        print("waiting for confirmation prompts (Ctrl-C to stop)", file=sys.stderr, flush=True)
        while True:
            for r in pending:
                p = r.prompt
                click.echo(
                    f"\n{printable(p.rp, 100)} asks: {printable(p.message, 1000, newlines=True)}"
                )
                number: int | None = None
                decision = Decision.DENY
                if click.confirm("Approve?", default=False):
                    decision = Decision.APPROVE
                    if p.choices:
                        picked = click.prompt(
                            f"Pick the number {printable(p.rp, 100)} shows "
                            f"({', '.join(map(str, sorted(p.choices)))})",
                            type=click.Choice([str(c) for c in sorted(p.choices)]),
                            show_choices=False,
                        )
                        number = int(picked)
                elif click.confirm("Report this request as not made by you?", default=False):
                    decision = Decision.REPORT
                try:
                    src.answer(p.request_id, decision, number)
                    click.echo(f"{decision.value}: {printable(p.rp, 100)}")
                except KeysteadError as e:
                    click.echo(f"keystead: could not answer: {printable(e, 300)}", err=True)
                if once:
                    return
            pending = src.wait_new(25)


@confirm.command("ui")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=0, help="Local port (default: any free one)"
)
def ui(port: int) -> None:
    """Answer prompts on a local web page (127.0.0.1 only)."""
    from .ui import UiServer

    with open_device() as dev:
        server = UiServer(_source()(dev), port=port, clock=dev.clock)
        # The token is in the URL's fragment: it reaches the person through this terminal only.
        print(f"confirmation page: {server.open_url}", flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
