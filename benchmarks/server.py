"""Start gunicorn on a free 127.0.0.1 port and always stop it again."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
#: gthread with one thread per worker: one request at a time per worker, as with the
#: sync worker, but with HTTP keep-alive (the sync worker closes every connection).
WORKER_CLASS = "gthread"


@dataclass(frozen=True)
class Server:
    """A running gunicorn: where it listens and how many workers it has."""

    host: str
    port: int
    workers: int
    process: subprocess.Popen[bytes]
    log_path: Path

    def log_tail(self, lines: int = 40) -> str:
        """The end of gunicorn's error log, for error messages."""
        try:
            text = self.log_path.read_text("utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


@contextlib.contextmanager
def gunicorn(app: str, *, workers: int, env: Mapping[str, str]) -> Iterator[Server]:
    """Serve the WSGI ``app`` ("module:name") with ``workers`` workers until the block
    ends. Call :func:`wait_until_ready` before sending it requests (starting several
    servers first and then waiting for all of them saves their start-up times).

    The listening socket is bound here and handed to gunicorn (``fd://``), so the port
    is free and ours without a race. gunicorn runs in its own process group, which is
    terminated (then killed) however the block ends.
    """
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((HOST, 0))
    listener.listen(2048)
    port = listener.getsockname()[1]
    log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed in the finally below
        prefix="evershop-bench-gunicorn-", suffix=".log", delete=False
    )
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "--bind",
        f"fd://{listener.fileno()}",
        "--workers",
        str(workers),
        "--worker-class",
        WORKER_CLASS,
        "--threads",
        "1",
        "--keep-alive",
        "300",
        "--timeout",
        "120",
        "--graceful-timeout",
        "5",
        "--log-level",
        "warning",
        "--error-logfile",
        "-",
        app,
    ]
    process = None
    try:
        process = subprocess.Popen(
            command,
            cwd=REPO,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            pass_fds=(listener.fileno(),),
            start_new_session=True,
        )
        yield Server(HOST, port, workers, process, Path(log.name))
    finally:
        listener.close()
        if process is not None:
            _stop(process)
        log.close()
        with contextlib.suppress(OSError):
            os.unlink(log.name)


def wait_until_ready(server: Server, timeout: float = 60.0) -> None:
    """Wait (bounded) until a worker answers ``GET /bare/pid``."""
    process = server.process
    request = f"GET /bare/pid HTTP/1.1\r\nHost: {server.host}\r\nConnection: close\r\n\r\n"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}:\n{server.log_tail()}")
        try:
            with socket.create_connection((server.host, server.port), timeout=5) as sock:
                sock.sendall(request.encode())
                if sock.recv(64).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"gunicorn did not answer within {timeout:.0f} s:\n{server.log_tail()}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to gunicorn's process group (the one it was started in), then SIGKILL."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
