"""The ssh-agent protocol as bytes in, values out (draft-miller-ssh-agent); no I/O.

Frames are a 4-byte length and a payload whose first byte is the message
type. Every parse is strict: a message with bytes left over is malformed, so
that two parsers can never disagree about what a client asked for.
"""

from __future__ import annotations

from dataclasses import dataclass

from keystead.core.errors import FormatError

from . import _wire

__all__ = [
    "MAX_MESSAGE",
    "Extension",
    "FrameDecoder",
    "Message",
    "RequestIdentities",
    "SessionBind",
    "SignRequest",
    "SshSigRequest",
    "Unsupported",
    "UserAuthRequest",
    "encode_failure",
    "encode_identities_answer",
    "encode_request_identities",
    "encode_sign_request",
    "encode_sign_response",
    "encode_success",
    "parse_identities_answer",
    "parse_message",
    "parse_session_bind",
    "parse_sign_data",
    "parse_sign_response",
]

MAX_MESSAGE = 256 * 1024

SSH_AGENT_FAILURE = 5
SSH_AGENT_SUCCESS = 6
SSH_AGENTC_REQUEST_IDENTITIES = 11
SSH_AGENT_IDENTITIES_ANSWER = 12
SSH_AGENTC_SIGN_REQUEST = 13
SSH_AGENT_SIGN_RESPONSE = 14
SSH_AGENTC_EXTENSION = 27

SESSION_BIND = "session-bind@openssh.com"
_SSH_MSG_USERAUTH_REQUEST = 50
_SSHSIG_MAGIC = b"SSHSIG"


@dataclass(frozen=True)
class RequestIdentities:
    """SSH_AGENTC_REQUEST_IDENTITIES: list the keys."""


@dataclass(frozen=True)
class SignRequest:
    """SSH_AGENTC_SIGN_REQUEST: sign ``data`` with the key whose blob is ``key_blob``."""

    key_blob: bytes
    data: bytes
    flags: int


@dataclass(frozen=True)
class Extension:
    """SSH_AGENTC_EXTENSION: a named extension; ``body`` follows the name raw."""

    name: str
    body: bytes


@dataclass(frozen=True)
class Unsupported:
    """Any other message type; the agent answers SSH_AGENT_FAILURE."""

    msg_type: int


Message = RequestIdentities | SignRequest | Extension | Unsupported


@dataclass(frozen=True)
class SessionBind:
    """``session-bind@openssh.com``: the host proves which session the client is in."""

    host_key: bytes
    session_id: bytes
    signature: bytes
    is_forwarding: bool


@dataclass(frozen=True)
class UserAuthRequest:
    """Signed data of an SSH public-key login (RFC 4252 section 7)."""

    session_id: bytes
    user: str
    service: str
    algorithm: str
    key_blob: bytes
    host_key: bytes | None  # only in publickey-hostbound-v00@openssh.com


@dataclass(frozen=True)
class SshSigRequest:
    """Signed data of an ``ssh-keygen -Y sign`` signature (git commits, files)."""

    namespace: str


class FrameDecoder:
    """Splits a byte stream into message payloads; keeps a partial frame for later."""

    def __init__(self, max_message: int = MAX_MESSAGE) -> None:
        self._buffer = bytearray()
        self._max = max_message

    @property
    def pending(self) -> int:
        """Bytes held back waiting for the rest of a frame."""
        return len(self._buffer)

    def feed(self, data: bytes) -> None:
        """Add received bytes; take the payloads out with ``next_payload``."""
        self._buffer += data

    def next_payload(self) -> bytes | None:
        """The next complete payload, or ``None`` until more bytes arrive.

        Raises ``FormatError`` on an empty frame or one over ``max_message``:
        the stream cannot be resynchronised, so the caller closes it. Frames
        before the bad one are still returned first.
        """
        buf = self._buffer
        if len(buf) < 4:
            return None
        length = int.from_bytes(buf[:4], "big")
        if length == 0 or length > self._max:
            del buf[:]
            raise FormatError("bad ssh-agent frame length")
        if len(buf) - 4 < length:
            return None
        payload = bytes(buf[4 : 4 + length])
        del buf[: 4 + length]
        return payload


def parse_message(payload: bytes) -> Message:
    """Parse one payload; ``FormatError`` if a known message is malformed."""
    if not payload:
        raise FormatError("empty ssh-agent message")
    msg_type = payload[0]
    r = _wire.Reader(payload[1:])
    if msg_type == SSH_AGENTC_REQUEST_IDENTITIES:
        r.end()
        return RequestIdentities()
    if msg_type == SSH_AGENTC_SIGN_REQUEST:
        key_blob, data, flags = r.string(), r.string(), r.uint32()
        r.end()
        return SignRequest(key_blob, data, flags)
    if msg_type == SSH_AGENTC_EXTENSION:
        name = r.text()
        return Extension(name, r.rest())
    return Unsupported(msg_type)


def parse_session_bind(body: bytes) -> SessionBind:
    """Parse the body of a ``session-bind@openssh.com`` extension."""
    r = _wire.Reader(body)
    bind = SessionBind(r.string(), r.string(), r.string(), r.boolean())
    r.end()
    return bind


def parse_sign_data(data: bytes) -> UserAuthRequest | SshSigRequest | None:
    """Recognise what a client asks to sign, for the confirm prompt and session checks.

    ``None`` means neither a login nor an SSHSIG signature.
    """
    if data.startswith(_SSHSIG_MAGIC):
        try:
            r = _wire.Reader(data[len(_SSHSIG_MAGIC) :])
            namespace = r.text()
            r.string(), r.string(), r.string()  # reserved, hash algorithm, digest
            r.end()
        except FormatError:
            return None
        return SshSigRequest(namespace)
    try:
        r = _wire.Reader(data)
        session_id = r.string()
        if r.byte() != _SSH_MSG_USERAUTH_REQUEST:
            return None
        user, service, method = r.text(), r.text(), r.text()
        host_key: bytes | None = None
        if method not in ("publickey", "publickey-hostbound-v00@openssh.com"):
            return None
        if not r.boolean():
            return None
        algorithm, key_blob = r.text(), r.string()
        if method != "publickey":
            host_key = r.string()
        r.end()
    except FormatError:
        return None
    return UserAuthRequest(session_id, user, service, algorithm, key_blob, host_key)


def _frame(payload: bytes) -> bytes:
    return len(payload).to_bytes(4, "big") + payload


def encode_failure() -> bytes:
    """A framed SSH_AGENT_FAILURE."""
    return b"\x00\x00\x00\x01\x05"


def encode_success() -> bytes:
    """A framed SSH_AGENT_SUCCESS."""
    return b"\x00\x00\x00\x01\x06"


def encode_identities_answer(keys: list[tuple[bytes, str]]) -> bytes:
    """A framed SSH_AGENT_IDENTITIES_ANSWER for ``(blob, comment)`` pairs."""
    parts = [bytes([SSH_AGENT_IDENTITIES_ANSWER]), _wire.uint32(len(keys))]
    for blob, comment in keys:
        parts += [_wire.string(blob), _wire.string(comment)]
    return _frame(b"".join(parts))


def encode_sign_response(signature: bytes) -> bytes:
    """A framed SSH_AGENT_SIGN_RESPONSE."""
    return _frame(bytes([SSH_AGENT_SIGN_RESPONSE]) + _wire.string(signature))


def encode_request_identities() -> bytes:
    """Client side: a framed SSH_AGENTC_REQUEST_IDENTITIES."""
    return _frame(bytes([SSH_AGENTC_REQUEST_IDENTITIES]))


def encode_sign_request(key_blob: bytes, data: bytes, flags: int = 0) -> bytes:
    """Client side: a framed SSH_AGENTC_SIGN_REQUEST."""
    body = _wire.string(key_blob) + _wire.string(data) + _wire.uint32(flags)
    return _frame(bytes([SSH_AGENTC_SIGN_REQUEST]) + body)


def parse_identities_answer(payload: bytes) -> list[tuple[bytes, str]]:
    """Client side: the keys in an identities answer payload."""
    r = _wire.Reader(payload)
    if r.byte() != SSH_AGENT_IDENTITIES_ANSWER:
        raise FormatError("not an identities answer")
    count = r.uint32()
    if count > r.remaining // 8:
        raise FormatError("identities answer claims more keys than it holds")
    keys = [(r.string(), r.text()) for _ in range(count)]
    r.end()
    return keys


def parse_sign_response(payload: bytes) -> bytes:
    """Client side: the signature blob in a sign response payload."""
    r = _wire.Reader(payload)
    if r.byte() != SSH_AGENT_SIGN_RESPONSE:
        raise FormatError("not a sign response")
    signature = r.string()
    r.end()
    return signature
