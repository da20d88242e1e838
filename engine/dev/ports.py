"""Free TCP ports for the processes the dev tools, tests and benchmarks start (brokers, workers).

A port found free by binding port 0 is free only until someone binds it, and the kernel may hand a
just-closed port out again at once: two ports asked for one after the other can be the same. So the
sockets of one request stay bound until all its ports are picked, and a process never hands out one
port twice."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Collection

_handed_out: set[int] = set()


def free_ports(host: str, count: int, taken: Collection[int] = ()) -> list[int]:
    """``count`` distinct ports free on ``host`` now, none in ``taken`` or handed out before."""
    with contextlib.ExitStack() as stack:
        ports: list[int] = []
        while len(ports) < count:
            s = stack.enter_context(socket.socket())
            s.bind((host, 0))
            port = int(s.getsockname()[1])
            if port not in taken and port not in _handed_out:
                ports.append(port)
        _handed_out.update(ports)
        return ports


def free_port(host: str = "127.0.0.1") -> int:
    return free_ports(host, 1)[0]
