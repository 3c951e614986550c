"""``gitops-dora`` processes forked from a warm parent (a "zygote"), for tests about the process.

The SIGKILL test of tests/test_store_acceptance.py kills 20+ ``collect git`` runs, its concurrency
tests read in a loop from processes while other processes write, and tests/test_secrets.py checks
what real CLI processes (and their git and HTTP children) print. Those are about processes (a kill,
file locks and snapshots between processes, a process's own streams), so they cannot run in the test
process (tests/cli_inprocess.py). But each ``gitops-dora`` started from scratch spends some
0.2 CPU-s starting the interpreter and importing Typer, the configuration models and every command
module before its command runs: work that has nothing to do with what these tests check.

:class:`ForkServer` starts one Python process that imports what the console script imports before
it runs a command (``analytics.cli.main`` and every ``cmd_*`` module, with Typer and pydantic; not
duckdb, whose import starts a native thread, and a process with threads is not safe to fork), then
waits. For every command, the test hands it the command line, the environment, the working
directory and the three standard streams (pipes the test made, passed as file descriptors over a
Unix socket); it forks, and the child sets up exactly that (``os.environ``, ``chdir``, the streams
on descriptors 0-2, ``sys.argv``, a fresh ``tempfile`` folder from the new ``TMPDIR``) and runs
``analytics.cli.main.run()`` as the console script does, then exits through the normal interpreter
shutdown (atexit handlers and finalizers run, as in a real process). The child is a real process:
its own pid, signals, DuckDB instance, file locks and streams; git children inherit its descriptors.

:class:`ForkedProcess` looks like ``subprocess.Popen`` for what the tests use (``pid``, ``args``,
``stdout``/``stderr`` text streams, ``poll``, ``wait``, ``communicate(timeout)``, ``send_signal``,
``returncode``: negative for a signal). The child is the fork server's child, not the test's, so
its exit status comes back over the socket, and its CPU time reaches the test process's
``RUSAGE_CHILDREN`` when the fork server itself is waited for (at :meth:`ForkServer.close`).

``GITOPS_DORA_TEST_REAL_CLI=1`` makes :meth:`ForkServer.popen` start the console script instead
(plain ``subprocess.Popen``), to compare or to rule the fork server out when a test fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

CLI = str(Path(sys.executable).with_name("gitops-dora"))
REAL_CLI_ENV = "GITOPS_DORA_TEST_REAL_CLI"

# The fork server, run with ``python -c``: standard library and the CLI's imports only (no test code
# in the children). Messages are JSON lines; a request carries its stdin/stdout/stderr descriptors.
_SERVER = r'''
import json, os, selectors, signal, socket, sys
sys.path[0] = os.path.dirname(sys.argv[1])  # as the console script: its folder, not the cwd
control = socket.socket(fileno=int(sys.argv[2]))
import analytics.cli.main as cli_main
cli_main._register_commands()  # Typer, pydantic, the config and every command module
import tempfile
r_wake, w_wake = os.pipe()
os.set_blocking(w_wake, False)
signal.signal(signal.SIGCHLD, lambda *_: None)
signal.set_wakeup_fd(w_wake)
running = {}
sel = selectors.DefaultSelector()
sel.register(control, selectors.EVENT_READ)
sel.register(r_wake, selectors.EVENT_READ)
buffer = b""

def send(message):
    control.sendall(json.dumps(message).encode() + b"\n")

def reap():
    while running:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        send({"id": running.pop(pid), "status": status})

def serve():
    global buffer
    while True:
        for key, _ in sel.select():
            if key.fileobj is r_wake:
                os.read(r_wake, 4096)
                reap()
                continue
            data, fds, _, _ = socket.recv_fds(control, 1 << 20, 3)
            if not data:
                return None
            buffer += data
            line, _, buffer = buffer.partition(b"\n")
            request = json.loads(line)
            sys.stdout.flush(); sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                sel.close(); control.close(); os.close(r_wake); os.close(w_wake)
                signal.set_wakeup_fd(-1)
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                for target, fd in enumerate(fds):
                    os.dup2(fd, target)
                    os.close(fd)
                return request
            for fd in fds:
                os.close(fd)
            running[pid] = request["id"]
            send({"id": request["id"], "pid": pid})
            reap()

request = serve()
if request is None:  # the test closed its end: wait for the children still running, then stop
    signal.set_wakeup_fd(-1)
    while running:
        pid, status = os.waitpid(-1, 0)
        if pid in running:
            send({"id": running.pop(pid), "status": status})
    sys.exit(0)
os.environ.clear()
os.environ.update(request["env"])
tempfile.tempdir = None  # chosen again from the new TMPDIR
os.chdir(request["cwd"])
sys.argv = [sys.argv[1], *request["args"]]
del control, sel, buffer, running
cli_main.run()
'''


class ForkedProcess:
    """One ``gitops-dora`` forked by a :class:`ForkServer`; the ``subprocess.Popen`` subset the
    tests use. ``stdout``/``stderr`` are text streams (the pipes' read ends)."""

    def __init__(self, server: ForkServer, request_id: int, args: list[str]) -> None:
        self.server, self.id, self.args = server, request_id, args
        self.pid = 0
        self.returncode: int | None = None
        self.stdout: IO[str] | None = None
        self.stderr: IO[str] | None = None
        self._exited = threading.Event()
        self._started = threading.Event()
        self._readers: list[threading.Thread] = []
        self._output: dict[str, list[str]] = {"stdout": [], "stderr": []}

    # set by the server's reader thread
    def _set_pid(self, pid: int) -> None:
        self.pid = pid
        self._started.set()

    def _set_status(self, status: int) -> None:
        self.returncode = os.waitstatus_to_exitcode(status)
        self._exited.set()

    def poll(self) -> int | None:
        return self.returncode

    def _lost(self) -> None:
        """The fork server went away before it reported this command's exit."""
        self._started.set()
        self._exited.set()

    def wait(self, timeout: float | None = None) -> int:
        if not self._exited.wait(timeout):
            raise subprocess.TimeoutExpired(self.args, timeout or 0)
        if self.returncode is None:
            raise RuntimeError(f"the fork server exited before reporting how {self.args} ended")
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:
            # as Popen: a child that has just exited (its status not yet reported) is no error
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def communicate(self, timeout: float | None = None) -> tuple[str, str]:
        """Both streams read to their end and the exit awaited, as ``Popen.communicate``: on
        ``TimeoutExpired`` what was read so far is kept for the next call."""
        if not self._readers:
            for name in ("stdout", "stderr"):
                stream = getattr(self, name)
                if stream is None:
                    continue
                thread = threading.Thread(target=self._drain, args=(stream, self._output[name]), daemon=True)
                thread.start()
                self._readers.append(thread)
        deadline = None if timeout is None else _now() + timeout
        for thread in self._readers:
            thread.join(None if deadline is None else max(0.0, deadline - _now()))
            if thread.is_alive():
                raise subprocess.TimeoutExpired(self.args, timeout or 0)
        self.wait(None if deadline is None else max(0.0, deadline - _now()))
        for name in ("stdout", "stderr"):
            stream = getattr(self, name)
            if stream is not None:
                stream.close()
        return "".join(self._output["stdout"]), "".join(self._output["stderr"])

    @staticmethod
    def _drain(stream: IO[str], into: list[str]) -> None:
        while chunk := stream.read(65536):
            into.append(chunk)


def _now() -> float:
    import time

    return time.monotonic()


class ForkServer:
    """A warm parent that forks ``gitops-dora`` commands (see the module docstring)."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.real = os.environ.get(REAL_CLI_ENV) == "1"
        self._lock = threading.Lock()  # the table of running commands
        self._send = threading.Lock()  # one request at a time, until its pid is back
        self._next = 0
        self._procs: dict[int, ForkedProcess] = {}
        self.server: subprocess.Popen[bytes] | None = None
        if self.real:
            return
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server = subprocess.Popen(
            [sys.executable, "-c", _SERVER, CLI, str(theirs.fileno())], pass_fds=(theirs.fileno(),),
            env=dict(env), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        theirs.close()
        self.control = ours
        self._reader = threading.Thread(target=self._read_replies, daemon=True)
        self._reader.start()

    def _read_replies(self) -> None:
        buffer = b""
        while True:
            data = self.control.recv(65536)
            if not data:  # the server is gone: nobody waits forever for what it will never report
                with self._lock:
                    lost = list(self._procs.values())
                for proc in lost:
                    proc._lost()
                return
            buffer += data
            while b"\n" in buffer:
                line, _, buffer = buffer.partition(b"\n")
                message = json.loads(line)
                with self._lock:
                    proc = self._procs[message["id"]]
                if "pid" in message:
                    proc._set_pid(message["pid"])
                else:
                    proc._set_status(message["status"])
                    with self._lock:
                        del self._procs[message["id"]]

    def popen(self, args: Sequence[str], *, env: Mapping[str, str], cwd: Path | str,
              stdin: Any = subprocess.DEVNULL) -> ForkedProcess | subprocess.Popen[str]:
        """``gitops-dora ARGS`` (``args`` without the program) with stdout and stderr on pipes."""
        if self.real:
            return subprocess.Popen([CLI, *args], stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True, env=dict(env), cwd=cwd)
        assert stdin == subprocess.DEVNULL, "only DEVNULL stdin is forwarded"
        fds_in = os.open(os.devnull, os.O_RDONLY)
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        with self._send:
            with self._lock:
                self._next += 1
                proc = ForkedProcess(self, self._next, [CLI, *args])
                self._procs[proc.id] = proc
            message = json.dumps({"id": proc.id, "args": list(args), "env": dict(env), "cwd": str(cwd)})
            socket.send_fds(self.control, [message.encode() + b"\n"], [fds_in, out_w, err_w])
            for fd in (fds_in, out_w, err_w):
                os.close(fd)
            if not proc._started.wait(60) or not proc.pid:
                raise RuntimeError("the fork server did not start the command")
        proc.stdout = open(out_r)  # noqa: SIM115 - closed in communicate
        proc.stderr = open(err_r)  # noqa: SIM115
        return proc

    def run(self, args: Sequence[str], *, env: Mapping[str, str], cwd: Path | str,
            timeout: float = 600) -> subprocess.CompletedProcess[str]:
        """As ``subprocess.run(capture_output=True, text=True)``."""
        proc = self.popen(args, env=env, cwd=cwd)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise
        return subprocess.CompletedProcess(proc.args, proc.returncode if proc.returncode is not None else -1,
                                           out, err)

    def close(self) -> None:
        """Stop the server once its children have exited and wait for it (its children's CPU time
        reaches the test process's ``RUSAGE_CHILDREN`` here)."""
        if self.server is None:
            return
        for proc in list(self._procs.values()):
            if proc.returncode is None and proc.pid:
                proc.kill()
        self.control.shutdown(socket.SHUT_WR)
        try:
            self.server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.server.kill()
            self.server.wait()
        self.control.close()
        self.server = None

    def __enter__(self) -> ForkServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
