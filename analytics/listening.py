"""The listening socket of the two servers, ``dashboard`` and ``serve-webhooks``.

Both are told a host and port on the command line. Left to the servers, a port already in use
showed up after the command had announced its URL: the dashboard printed its address and then
Streamlit's "Port 8501 is not available" (exit 1), the receiver listed its endpoints and then
uvicorn's log line (exit 3). Binding here first makes it one ``error:`` line and exit 2, before
anything is announced or the store is opened.
"""

from __future__ import annotations

import errno
import socket

from analytics.errors import UserError


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host``:``port`` (not listening yet), bound as uvicorn binds it:
    IPv6 for a host with a colon, ``SO_REUSEADDR`` so connections of a server that just stopped do
    not hold the port. Raises UserError naming the address and the reason.

    ``TCP_NODELAY``, which the connections it accepts inherit: the event loop sets it on the
    sockets of a server it binds itself, not on those of one it is handed, and with Nagle's
    algorithm each small answer waited for the client's delayed ACK. The receiver's throughput
    at 50 concurrent deliveries fell from 715-848 to 502-534 a second when it began serving on
    this socket (bench/webhook_receiver.py; 890-948 with the option, docs/performance.md)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family=family)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        shown = f"[{host}]:{port}" if family == socket.AF_INET6 else f"{host}:{port}"
        reason = exc.strerror or str(exc)
        if exc.errno == errno.EADDRINUSE:
            reason += " (another dashboard or receiver?); choose another --port"
        raise UserError(f"cannot listen on {shown}: {reason.lower()}") from None
    return sock


def check_free(host: str, port: int) -> None:
    """Raise UserError, as :func:`listening_socket` does, unless ``host``:``port`` can be bound now
    (for a server that binds it itself, a moment later)."""
    listening_socket(host, port).close()
