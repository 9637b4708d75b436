"""What the agent answers to each message, apart from sockets.

Keys come from a provider callable that is asked again every
``cache_seconds``: the agent stops serving a removed device's keys once the
provider stops returning them. A provider that raises ``NetworkError`` (the
service is unreachable) leaves the last keys in service; any other error
serves none. Each signature may need one approval.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from keystead.core.errors import FormatError, InvalidSignature, NetworkError

from . import _agent_protocol as proto
from ._keys import MAX_AGENT_KEYS, AgentKey, PublicKey, UnsupportedSignRequest
from ._verify import verify_signature

__all__ = ["AgentCore", "ConfirmHook", "KeyProvider", "Session", "SignContext"]

log = logging.getLogger(__name__)

KeyProvider = Callable[[], Sequence[AgentKey]]
MAX_SESSION_BINDS = 16


@dataclass(frozen=True)
class SignContext:
    """What a signature is for, shown to the person before approving it.

    ``host_key`` is set only when the host proved it with a verified
    ``session-bind``; ``user`` only when the data is an SSH login request.
    """

    key: PublicKey
    data: bytes = field(repr=False)
    flags: int
    user: str | None
    host_key: PublicKey | None
    forwarded: bool
    namespace: str | None  # SSHSIG namespace (e.g. "git") for ssh-keygen -Y sign


ConfirmHook = Callable[[SignContext], bool]


@dataclass
class Session:
    """Per-connection state: the sessions this client proved it is bound to."""

    binds: list[proto.SessionBind] = field(default_factory=list)


@dataclass(frozen=True)
class _KeySet:
    keys: tuple[AgentKey, ...]
    by_blob: dict[bytes, AgentKey]
    answer: bytes


class AgentCore:
    """Turns one request payload into one framed reply; thread-safe."""

    def __init__(
        self,
        provider: KeyProvider,
        *,
        confirm: ConfirmHook | None = None,
        max_keys: int = MAX_AGENT_KEYS,
        cache_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_keys < 1:
            raise ValueError("max_keys must be at least 1")
        self._provider = provider
        self._confirm = confirm
        self._max_keys = max_keys
        self._ttl = cache_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._cached: _KeySet | None = None
        self._fetched_at = 0.0

    def keys(self) -> tuple[AgentKey, ...]:
        """The keys served now: the provider's first ``max_keys``, device key first."""
        return self._keyset().keys

    def _keyset(self) -> _KeySet:
        now = self._clock()
        cached = self._cached
        if cached is not None and now - self._fetched_at < self._ttl:
            return cached
        with self._lock:
            if self._cached is not None and now - self._fetched_at < self._ttl:
                return self._cached
            try:
                keys = tuple(dict.fromkeys(self._provider()))[: self._max_keys]
            except NetworkError:
                log.warning("keystead service unreachable; serving the last known ssh keys")
                keys = self._cached.keys if self._cached is not None else ()
            except Exception:  # the provider is foreign code: fail closed, keep serving
                log.exception("ssh key provider failed; serving no keys")
                keys = ()
            answer = proto.encode_identities_answer([(k.public_blob, k.comment) for k in keys])
            keyset = _KeySet(keys, {k.public_blob: k for k in keys}, answer)
            self._cached, self._fetched_at = keyset, now
            return keyset

    def may_block(self, payload: bytes) -> bool:
        """Whether answering ``payload`` may wait on the person (a signature to confirm)."""
        return self._confirm is not None and payload[:1] == bytes([proto.SSH_AGENTC_SIGN_REQUEST])

    def handle(self, payload: bytes, session: Session) -> bytes:
        """Answer one message; anything malformed or unsupported gets FAILURE."""
        try:
            msg = proto.parse_message(payload)
        except FormatError:
            return proto.encode_failure()
        if isinstance(msg, proto.RequestIdentities):
            return self._keyset().answer
        if isinstance(msg, proto.SignRequest):
            return self._sign(msg, session)
        if isinstance(msg, proto.Extension) and msg.name == proto.SESSION_BIND:
            return self._session_bind(msg.body, session)
        return proto.encode_failure()

    def _session_bind(self, body: bytes, session: Session) -> bytes:
        try:
            bind = proto.parse_session_bind(body)
            verify_signature(bind.host_key, bind.signature, bind.session_id)
        except (FormatError, InvalidSignature):
            return proto.encode_failure()
        for old in session.binds:
            if old.session_id == bind.session_id:
                same = old.host_key == bind.host_key
                return proto.encode_success() if same else proto.encode_failure()
        if len(session.binds) >= MAX_SESSION_BINDS or any(
            not b.is_forwarding for b in session.binds
        ):
            return proto.encode_failure()  # already bound for authentication
        session.binds.append(bind)
        return proto.encode_success()

    def _sign(self, req: proto.SignRequest, session: Session) -> bytes:
        key = self._keyset().by_blob.get(req.key_blob)
        if key is None:
            return proto.encode_failure()
        info = proto.parse_sign_data(req.data)
        bind: proto.SessionBind | None = None
        if isinstance(info, proto.UserAuthRequest):
            if info.key_blob != key.public_blob:
                return proto.encode_failure()
            bind = next((b for b in session.binds if b.session_id == info.session_id), None)
            last = session.binds[-1] if session.binds else None
            if last is not None and not last.is_forwarding and bind is not last:
                return proto.encode_failure()  # a login for a session this client is not in
            if bind is not None and info.host_key not in (None, bind.host_key):
                return proto.encode_failure()
        if self._confirm is not None:
            context = SignContext(
                key=key.public,
                data=req.data,
                flags=req.flags,
                user=info.user if isinstance(info, proto.UserAuthRequest) else None,
                host_key=PublicKey(bind.host_key) if bind is not None else None,
                forwarded=any(b.is_forwarding for b in session.binds),
                namespace=info.namespace if isinstance(info, proto.SshSigRequest) else None,
            )
            try:
                approved = self._confirm(context) is True
            except Exception:  # the hook is foreign code: deny
                log.exception("ssh confirm hook failed; denying")
                approved = False
            if not approved:
                return proto.encode_failure()
        try:
            return proto.encode_sign_response(key.sign(req.data, req.flags))
        except UnsupportedSignRequest:
            return proto.encode_failure()
