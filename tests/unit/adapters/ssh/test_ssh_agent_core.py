"""The agent's answers without sockets: key order and cap, removal, session-bind, confirm."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from keystead.adapters.ssh import _agent_protocol as proto
from keystead.adapters.ssh import _wire
from keystead.adapters.ssh._agent_core import AgentCore, Session, SignContext
from keystead.adapters.ssh._keys import AgentKey, generate_device_key
from keystead.adapters.ssh._verify import verify_signature
from keystead.core.errors import DeviceRemoved, NetworkError

DEVICE = generate_device_key("device")
HOST = generate_device_key("host")
FAILURE = proto.encode_failure()
SUCCESS = proto.encode_success()


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def listed(core: AgentCore) -> list[tuple[bytes, str]]:
    return proto.parse_identities_answer(core.handle(b"\x0b", Session())[4:])


def sign(core: AgentCore, key: AgentKey, data: bytes, session: Session | None = None) -> bytes:
    payload = proto.encode_sign_request(key.public_blob, data)[4:]
    return core.handle(payload, session or Session())


def bind_payload(session_id: bytes, forwarding: bool = False, host: AgentKey = HOST) -> bytes:
    body = _wire.string(host.public_blob) + _wire.string(session_id)
    body += _wire.string(host.sign(session_id)) + _wire.boolean(forwarding)
    return b"\x1b" + _wire.string(proto.SESSION_BIND) + body


def userauth(session_id: bytes, key: AgentKey, user: str = "alice") -> bytes:
    data = _wire.string(session_id) + b"\x32" + _wire.string(user) + _wire.string("ssh-connection")
    data += _wire.string("publickey") + _wire.boolean(True) + _wire.string("ssh-ed25519")
    return data + _wire.string(key.public_blob)


def test_order_dedup_and_cap() -> None:
    keys = [DEVICE] + [generate_device_key(f"k{i}") for i in range(6)]
    core = AgentCore(lambda: [DEVICE, *keys], max_keys=5)
    assert [blob for blob, _ in listed(core)] == [k.public_blob for k in keys[:5]]
    assert sign(core, keys[6], b"x") == FAILURE  # beyond the cap: not offered, not used


def test_removed_device_stops_within_cache_seconds() -> None:
    clock = Clock()
    holder: list[AgentKey] = [DEVICE]
    core = AgentCore(lambda: holder, cache_seconds=2.0, clock=clock)
    assert sign(core, DEVICE, b"x") != FAILURE
    holder.clear()
    clock.now = 1.0
    assert sign(core, DEVICE, b"x") != FAILURE  # cached
    clock.now = 2.0
    assert sign(core, DEVICE, b"x") == FAILURE
    assert listed(core) == []


def test_unreachable_service_keeps_last_keys_other_errors_serve_none() -> None:
    clock = Clock()
    failure: list[Exception] = []

    def provider() -> Sequence[AgentKey]:
        if failure:
            raise failure[0]
        return [DEVICE]

    core = AgentCore(provider, cache_seconds=1.0, clock=clock)
    assert len(listed(core)) == 1
    failure.append(NetworkError("service unreachable"))
    clock.now = 5.0
    assert sign(core, DEVICE, b"x") != FAILURE  # offline: still serving
    failure[0] = DeviceRemoved("removed")
    clock.now = 10.0
    assert listed(core) == [] and sign(core, DEVICE, b"x") == FAILURE
    failure[0] = NetworkError("offline again")
    clock.now = 15.0
    assert listed(core) == []  # nothing to fall back to once keys were withdrawn


def test_confirm_gets_user_and_bound_host_once_per_signature() -> None:
    seen: list[SignContext] = []
    answers = [True, False]
    core = AgentCore(lambda: [DEVICE], confirm=lambda c: seen.append(c) or answers.pop(0))
    session = Session()
    assert core.handle(bind_payload(b"sid"), session) == SUCCESS
    reply = sign(core, DEVICE, userauth(b"sid", DEVICE), session)
    sig = proto.parse_sign_response(reply[4:])
    verify_signature(DEVICE.public_blob, sig, userauth(b"sid", DEVICE))
    assert sign(core, DEVICE, userauth(b"sid", DEVICE), session) == FAILURE  # second: denied
    assert len(seen) == 2
    assert seen[0].user == "alice" and seen[0].host_key == HOST.public and not seen[0].forwarded


def test_confirm_that_raises_denies() -> None:
    def confirm(context: SignContext) -> bool:
        raise RuntimeError("prompt crashed")

    core = AgentCore(lambda: [DEVICE], confirm=confirm)
    assert sign(core, DEVICE, b"x") == FAILURE


def test_session_bind_rules() -> None:
    core = AgentCore(lambda: [DEVICE])
    session = Session()
    other_host = generate_device_key("other")
    good = bind_payload(b"sid")
    # flip a bit in the signature's last byte (the very last byte is the forwarding flag);
    # overwriting it with a constant would leave it unchanged one time in 256
    bad_sig = good[:-2] + bytes([good[-2] ^ 0x01]) + good[-1:]
    assert core.handle(bad_sig, session) == FAILURE
    assert core.handle(bind_payload(b"fwd", forwarding=True), session) == SUCCESS
    assert core.handle(bind_payload(b"sid"), session) == SUCCESS
    assert core.handle(bind_payload(b"sid"), session) == SUCCESS  # same again: fine
    assert core.handle(bind_payload(b"sid", host=other_host), session) == FAILURE
    assert core.handle(bind_payload(b"new"), session) == FAILURE  # already bound for auth
    # a login for a session this connection is not bound to is refused
    assert sign(core, DEVICE, userauth(b"elsewhere", DEVICE), session) == FAILURE
    assert sign(core, DEVICE, userauth(b"sid", DEVICE), session) != FAILURE


def test_userauth_for_another_key_is_refused() -> None:
    core = AgentCore(lambda: [DEVICE])
    assert sign(core, DEVICE, userauth(b"sid", generate_device_key("x"))) == FAILURE


def test_sshsig_namespace_reaches_confirm() -> None:
    seen: list[SignContext] = []
    core = AgentCore(lambda: [DEVICE], confirm=lambda c: seen.append(c) is None)
    data = b"SSHSIG" + _wire.string("git") + _wire.string(b"") + _wire.string("sha512")
    assert sign(core, DEVICE, data + _wire.string(b"h" * 64)) != FAILURE
    assert seen[0].namespace == "git" and seen[0].user is None and seen[0].host_key is None


def test_max_keys_must_be_positive() -> None:
    with pytest.raises(ValueError):
        AgentCore(lambda: [], max_keys=0)


@settings(max_examples=300)
@given(
    st.one_of(
        st.binary(max_size=200),
        st.sampled_from([b"\x0b", b"\x0d", b"\x1b" + _wire.string(proto.SESSION_BIND)]).flatmap(
            lambda head: st.binary(max_size=200).map(lambda tail: head + tail)
        ),
    )
)
def test_fuzz_every_payload_gets_one_well_formed_reply(payload: bytes) -> None:
    core = AgentCore(lambda: [DEVICE])
    reply = core.handle(payload, Session())
    d = proto.FrameDecoder()
    d.feed(reply)
    body = d.next_payload()
    assert body is not None and d.pending == 0
    assert body[0] in (5, 6, 12, 14)
