"""Several server processes on one port, each accepting on a listening socket of its own.

uvicorn's `--workers` binds one socket that every worker accepts on: whichever worker's event
loop wakes first takes the new connection, so a burst of connections (a load balancer or
50 clients opening theirs at once) lands unevenly, and kept-alive connections then stay where
they landed for as long as they live. With `SO_REUSEPORT` each worker has its own socket on
the same port and the kernel spreads the connections over them by a hash of their
addresses, evenly whatever each worker is doing.

The supervision (restarting a worker that died, signals, orderly stop) stays uvicorn's:
only the socket each worker is given changes.
"""

from __future__ import annotations

import socket

from uvicorn import Config
from uvicorn.supervisors.multiprocess import Multiprocess


def port_sharing_socket(host: str, port: int) -> socket.socket:
    """A socket bound to host:port that other sockets of this user may share (SO_REUSEPORT)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def port_is_free(host: str, port: int) -> bool:
    """Whether nothing listens on host:port: SO_REUSEPORT would otherwise let this server
    join another server of the same user on that port, and share its connections."""
    probe = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        probe.bind((host, port))
    except OSError:
        return False
    finally:
        probe.close()
    return True


class PortSharingWorkers(Multiprocess):
    """uvicorn's supervisor, each worker (and each replacement) given a socket of its own."""

    def __init__(self, config: Config):
        super().__init__(config, sockets=[])

    @property
    def sockets(self) -> list[socket.socket]:
        # Read once per worker started (`Process(self.config, self.sockets)`): a new socket,
        # the parent's copy closed with that worker's `Process` once it is replaced.
        return [port_sharing_socket(self.config.host, self.config.port)]

    @sockets.setter
    def sockets(self, value: list[socket.socket]) -> None:
        pass  # no socket shared by the workers
