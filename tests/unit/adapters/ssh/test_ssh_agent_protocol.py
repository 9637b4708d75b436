"""Agent frames and messages: strict parsing, and a fuzz test over the frame parser."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from keystead.adapters.ssh import _agent_protocol as proto
from keystead.adapters.ssh import _wire
from keystead.core.errors import FormatError


def frames(decoder: proto.FrameDecoder) -> list[bytes]:
    out = []
    while (payload := decoder.next_payload()) is not None:
        out.append(payload)
    return out


def test_decoder_splits_and_holds_partial_frames() -> None:
    d = proto.FrameDecoder()
    stream = proto.encode_request_identities() + proto.encode_sign_request(b"k", b"d", 4)
    d.feed(stream[:7])
    assert frames(d) == [b"\x0b"]
    assert d.pending == 2
    d.feed(stream[7:])
    assert [proto.parse_message(p) for p in frames(d)] == [proto.SignRequest(b"k", b"d", 4)]
    assert d.pending == 0


@pytest.mark.parametrize("length", [0, proto.MAX_MESSAGE + 1, 2**32 - 1])
def test_decoder_rejects_bad_lengths(length: int) -> None:
    d = proto.FrameDecoder()
    d.feed(proto.encode_request_identities() + length.to_bytes(4, "big") + b"\x0b")
    assert d.next_payload() == b"\x0b"  # the good frame before the bad one still counts
    with pytest.raises(FormatError):
        d.next_payload()


def test_decoder_accepts_the_maximum() -> None:
    d = proto.FrameDecoder()
    d.feed(proto.MAX_MESSAGE.to_bytes(4, "big") + b"\x63" * proto.MAX_MESSAGE)
    assert d.next_payload() == b"\x63" * proto.MAX_MESSAGE


@pytest.mark.parametrize(
    "payload, expected",
    [
        (b"\x0b", proto.RequestIdentities()),
        (b"\x11anything", proto.Unsupported(17)),
        (b"\x1b" + _wire.string("x@y") + b"raw", proto.Extension("x@y", b"raw")),
    ],
)
def test_parse_message(payload: bytes, expected: proto.Message) -> None:
    assert proto.parse_message(payload) == expected


@pytest.mark.parametrize(
    "payload",
    [b"", b"\x0b\x00", b"\x0d" + _wire.string(b"k") + _wire.string(b"d"), b"\x1b\x00\x00"],
)
def test_parse_message_rejects_malformed(payload: bytes) -> None:
    with pytest.raises(FormatError):
        proto.parse_message(payload)


def test_sign_request_with_trailing_garbage() -> None:
    payload = proto.encode_sign_request(b"k", b"d", 0)[4:] + b"\x00"
    with pytest.raises(FormatError):
        proto.parse_message(payload)


def _userauth(method: str, host_key: bytes | None = None) -> bytes:
    data = _wire.string(b"sid") + b"\x32" + _wire.string("alice") + _wire.string("ssh-connection")
    data += _wire.string(method) + _wire.boolean(True) + _wire.string("ssh-ed25519")
    data += _wire.string(b"blob")
    return data + (_wire.string(host_key) if host_key is not None else b"")


def test_parse_sign_data_userauth() -> None:
    info = proto.parse_sign_data(_userauth("publickey"))
    assert info == proto.UserAuthRequest(
        b"sid", "alice", "ssh-connection", "ssh-ed25519", b"blob", None
    )
    hostbound = proto.parse_sign_data(_userauth("publickey-hostbound-v00@openssh.com", b"hk"))
    assert isinstance(hostbound, proto.UserAuthRequest) and hostbound.host_key == b"hk"


def test_parse_sign_data_sshsig_and_other() -> None:
    sshsig = b"SSHSIG" + _wire.string("git") + _wire.string(b"") + _wire.string("sha512")
    assert proto.parse_sign_data(sshsig + _wire.string(b"h" * 64)) == proto.SshSigRequest("git")
    assert proto.parse_sign_data(b"random bytes") is None
    assert proto.parse_sign_data(_userauth("password")) is None
    assert proto.parse_sign_data(_userauth("publickey") + b"!") is None


def test_identities_answer_round_trip() -> None:
    keys = [(b"blob1", "one"), (b"blob2", "")]
    assert proto.parse_identities_answer(proto.encode_identities_answer(keys)[4:]) == keys
    with pytest.raises(FormatError):
        proto.parse_identities_answer(b"\x0c\xff\xff\xff\xff")


@settings(max_examples=500)
@given(st.lists(st.binary(max_size=40), max_size=8))
def test_fuzz_frame_parser_only_raises_format_error(chunks: list[bytes]) -> None:
    d = proto.FrameDecoder(max_message=64)
    for chunk in chunks:
        d.feed(chunk)
        try:
            for payload in frames(d):
                assert 0 < len(payload) <= 64
                try:
                    proto.parse_message(payload)
                    proto.parse_sign_data(payload)
                except FormatError:
                    pass
        except FormatError:
            return  # the stream is dead; the server closes it


@given(st.binary(max_size=300), st.binary(max_size=300), st.integers(0, 2**32 - 1))
def test_fuzz_sign_request_round_trip(blob: bytes, data: bytes, flags: int) -> None:
    d = proto.FrameDecoder()
    d.feed(proto.encode_sign_request(blob, data, flags))
    payload = d.next_payload()
    assert payload is not None
    assert proto.parse_message(payload) == proto.SignRequest(blob, data, flags)
