"""Ports picked for the processes the tools start are free and never picked twice."""

from __future__ import annotations

import socket

from orderbank.engine.dev.ports import free_port, free_ports


def test_ports_picked_together_are_distinct_free_and_not_taken() -> None:
    # Asked for one at a time, two ports can come back the same (a broker's client and controller
    # listeners once did, and Kafka refused to start).
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        busy = held.getsockname()[1]
        for _ in range(50):
            ports = free_ports("127.0.0.1", 3, taken={busy})
            assert len(set(ports)) == 3 and busy not in ports
            for port in ports:
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))  # free once picked


def test_a_process_never_hands_out_a_port_twice() -> None:
    # Workers made back to back pick their web ports one at a time, each socket closed at once.
    picked = [free_port() for _ in range(200)]
    assert len(set(picked)) == len(picked)
