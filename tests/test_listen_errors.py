"""``dashboard`` and ``serve-webhooks`` on an address they cannot listen on (a port another server
holds, a host name that does not resolve): one ``error:`` line and exit 2, before the command
announces a URL or opens the store (analytics/listening.py). Before, the dashboard printed its URL
and then Streamlit's "Port N is not available" (exit 1), and the receiver listed its endpoints,
migrated the store and then printed uvicorn's log line (exit 3)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import cli_inprocess
from tests.child_env import child_env
from tests.dashboard_server import dashboard_command


@pytest.fixture()
def taken_port() -> Iterator[int]:
    """A port on 127.0.0.1 another server is listening on."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        yield int(other.getsockname()[1])


def _env() -> dict[str, str]:
    return child_env(drop=("GITOPS_DORA_", "STREAMLIT_"))


def test_the_dashboard_on_a_port_in_use_says_so_in_one_line_and_starts_nothing(
        tmp_path: Path, taken_port: int) -> None:
    run = dashboard_command(["--db", str(tmp_path / "x.ducklake"), "dashboard", "--port", str(taken_port)],
                            env=_env(), cwd=tmp_path)
    assert run.result.returncode == 2
    assert run.result.stderr.splitlines() == [
        f"error: cannot listen on 127.0.0.1:{taken_port}: address already in use"
        " (another dashboard or receiver?); choose another --port"]
    assert "http://" not in run.result.stdout           # no URL announced for a server that never runs
    assert run.argv is None                             # Streamlit not started


def test_the_receiver_on_a_port_in_use_says_so_in_one_line_and_leaves_the_store_alone(
        tmp_path: Path, taken_port: int) -> None:
    db = tmp_path / "store.ducklake"
    proc = cli_inprocess.run(["--db", str(db), "serve-webhooks", "--port", str(taken_port), "--insecure"],
                             env=_env(), cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        f"error: cannot listen on 127.0.0.1:{taken_port}: address already in use"
        " (another dashboard or receiver?); choose another --port"]
    assert not db.exists() and not Path(f"{db}.files").exists()   # not created, not migrated


@pytest.mark.parametrize("command", [["dashboard"], ["serve-webhooks", "--insecure"]])
def test_a_host_that_does_not_resolve_is_one_line(tmp_path: Path, command: list[str]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    argv = ["--db", str(tmp_path / "s.ducklake"), *command, "--host", "no-such-host.invalid",
            "--port", str(port)]
    if command == ["dashboard"]:
        result = dashboard_command(argv, env=_env(), cwd=tmp_path).result
    else:
        result = cli_inprocess.run(argv, env=_env(), cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"error: cannot listen on no-such-host.invalid:{port}: ")


def test_connections_the_servers_accept_do_not_wait_for_nagle() -> None:
    """The receiver serves on analytics.listening's socket, and asyncio/uvloop set TCP_NODELAY
    only on the connections of a server they bind themselves: without it on this socket (which
    accepted connections inherit), each small answer waited for the client's delayed ACK and the
    receiver's throughput at 50 concurrent deliveries fell by a third (bench/webhook_receiver.py)."""
    from analytics.listening import listening_socket

    server = listening_socket("127.0.0.1", 0)
    try:
        server.listen(1)
        client = socket.create_connection(server.getsockname()[:2])
        accepted, _ = server.accept()
        try:
            assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        finally:
            accepted.close()
            client.close()
    finally:
        server.close()
