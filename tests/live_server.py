"""The example app served as ``make run`` serves it, in a process of its own, for the tests
that talk to it as a reader or a browser would (the docs' walk-through, the storefront page).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class LiveServer:
    """A running example app: its folder (holding ``server.log`` and the instance
    folder) and its address."""

    folder: Path
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return (self.folder / "server.log").read_text("utf-8")


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def make_run(folder: Path, **config: str) -> Iterator[LiveServer]:
    """``flask --app examples.app run`` from a copy of the checkout's ``examples`` in
    ``folder``, with a fresh instance folder; ``config`` adds ``FLASK_*`` variables."""
    shutil.copytree(
        ROOT / "examples", folder / "examples", ignore=shutil.ignore_patterns("__pycache__")
    )
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLASK_", "EVERSHOP_"))}
    env.update({f"FLASK_{key}": value for key, value in config.items()})
    log = (folder / "server.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "examples.app", "run", "--port", str(port)],
        cwd=folder,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    live = LiveServer(folder, port)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{live.url}/api/customers/openapi.json"):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(live.log()) from None
                time.sleep(0.2)
        yield live
    finally:
        server.terminate()
        server.wait(10)
        log.close()
