"""The agent's client connections: per-client state and who gives way when one peer hoards.

``ssh`` keeps its agent connection open for the whole session, so idle
connections are normal and never timed out; instead each *peer process* may
hold at most ``max_per_peer`` of them. When one opens more, its own
longest-idle connection is closed: a leaking or hostile process costs only
itself, and every other client is still taken, however many connections are open.
Each connection's memory is bounded too: it is not read while a reply is
pending, so at most one read (64 KiB) plus one partial frame is buffered.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field

from ._agent_core import Session
from ._agent_protocol import FrameDecoder

__all__ = ["DEFAULT_MAX_PER_PEER", "Client", "ClientTable"]

DEFAULT_MAX_PER_PEER = 64


@dataclass(eq=False)
class Client:
    """One connection: its peer, its protocol state and what is waiting to be sent."""

    sock: socket.socket
    peer_pid: int
    last_active: float
    session: Session = field(default_factory=Session)
    decoder: FrameDecoder = field(default_factory=FrameDecoder)
    out: bytearray = field(default_factory=bytearray)
    busy: bool = False  # a request is being answered on a worker thread
    watching: int = 0  # the selector events registered for this socket (0: none)
    closed: bool = False

    @property
    def wants_read(self) -> bool:
        """Read only when nothing is pending: a client that does not read its replies
        stops being read, instead of growing our buffers."""
        return not self.busy and not self.out and not self.closed


class ClientTable:
    """Open connections grouped by peer process; picks which one to drop when needed."""

    def __init__(self, max_per_peer: int = DEFAULT_MAX_PER_PEER) -> None:
        if max_per_peer < 1:
            raise ValueError("max_per_peer must be at least 1")
        self.max_per_peer = max_per_peer
        self._by_sock: dict[socket.socket, Client] = {}

    def __len__(self) -> int:
        return len(self._by_sock)

    def all(self) -> list[Client]:
        return list(self._by_sock.values())

    def get(self, sock: socket.socket) -> Client | None:
        return self._by_sock.get(sock)

    def add(self, client: Client) -> Client | None:
        """Add ``client``; return a connection of the same peer to close to make room
        (the new one itself when all the others are busy answering)."""
        same = [c for c in self._by_sock.values() if c.peer_pid == client.peer_pid]
        self._by_sock[client.sock] = client
        if len(same) < self.max_per_peer:
            return None
        return self._idlest(same) or client

    def remove(self, client: Client) -> None:
        self._by_sock.pop(client.sock, None)

    def victim_for_new_files(self) -> Client | None:
        """Out of file descriptors: the idlest connection of the peer holding the most."""
        counts: dict[int, list[Client]] = {}
        for c in self._by_sock.values():
            counts.setdefault(c.peer_pid, []).append(c)
        if not counts:
            return None
        return self._idlest(max(counts.values(), key=len))

    @staticmethod
    def _idlest(clients: list[Client]) -> Client | None:
        idle = [c for c in clients if not c.busy]
        return min(idle, key=lambda c: c.last_active) if idle else None
