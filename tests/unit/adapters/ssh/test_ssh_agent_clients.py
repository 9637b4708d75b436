"""Who gives way when connections pile up: only the hoarding peer, its idlest first."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from keystead.adapters.ssh._agent_clients import Client, ClientTable


@pytest.fixture
def sockets() -> Iterator[list[socket.socket]]:
    made: list[socket.socket] = []
    yield made
    for s in made:
        s.close()


def client(sockets: list[socket.socket], pid: int, at: float, busy: bool = False) -> Client:
    a, b = socket.socketpair()
    sockets += [a, b]
    return Client(a, pid, at, busy=busy)


def test_a_peer_past_its_bound_loses_its_own_idlest(sockets: list[socket.socket]) -> None:
    table = ClientTable(max_per_peer=3)
    other = client(sockets, 2, 0.0)  # another peer, idlest of all: never touched
    assert table.add(other) is None
    mine = [client(sockets, 1, t) for t in (5.0, 1.0, 3.0)]
    assert [table.add(c) for c in mine] == [None, None, None]
    new = client(sockets, 1, 9.0)
    assert table.add(new) is mine[1]
    table.remove(mine[1])
    assert len(table) == 4 and other in table.all()


def test_busy_connections_are_not_dropped_the_newcomer_is(sockets: list[socket.socket]) -> None:
    table = ClientTable(max_per_peer=2)
    busy = [client(sockets, 1, t, busy=True) for t in (1.0, 2.0)]
    for c in busy:
        table.add(c)
    new = client(sockets, 1, 3.0)
    assert table.add(new) is new


def test_out_of_descriptors_the_biggest_peer_gives_way(sockets: list[socket.socket]) -> None:
    table = ClientTable(max_per_peer=10)
    assert table.victim_for_new_files() is None
    small = client(sockets, 1, 0.0)
    big = [client(sockets, 2, t) for t in (4.0, 2.0, 6.0)]
    for c in [small, *big]:
        table.add(c)
    assert table.victim_for_new_files() is big[1]


def test_bound_must_be_positive() -> None:
    with pytest.raises(ValueError):
        ClientTable(max_per_peer=0)


def test_wants_read_only_with_nothing_pending(sockets: list[socket.socket]) -> None:
    c = client(sockets, 1, 0.0)
    assert c.wants_read
    c.out += b"reply"
    assert not c.wants_read
    c.out.clear()
    c.busy = True
    assert not c.wants_read
