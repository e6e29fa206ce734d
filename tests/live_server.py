"""The example app served by ``make run`` itself, in a process of its own, for the tests
that talk to it as a reader or a browser would (the docs' walk-throughs, the storefront
page).
"""

from __future__ import annotations

import os
import shutil
import signal
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
    """``make run`` in ``folder``, a copy of the checkout's ``Makefile`` and ``examples``
    with a fresh instance folder, using this interpreter's virtual environment as is;
    ``config`` adds ``FLASK_*`` variables. Its port is a free one (``FLASK_RUN_PORT``)."""
    shutil.copytree(
        ROOT / "examples", folder / "examples", ignore=shutil.ignore_patterns("__pycache__")
    )
    for name in ("Makefile", "pyproject.toml", "setup.py"):
        shutil.copy2(ROOT / name, folder / name)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLASK_", "EVERSHOP_"))}
    env.update({f"FLASK_{key}": value for key, value in config.items()})
    env["FLASK_RUN_PORT"] = str(port)
    venv = Path(sys.prefix)
    log = (folder / "server.log").open("w")
    # -o: the environment is installed already (it runs this test); never reinstall it.
    server = subprocess.Popen(
        ["make", "--no-print-directory", "run", f"VENV={venv}", "-o", f"{venv}/.installed-stamp"],
        cwd=folder,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
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
        os.killpg(server.pid, signal.SIGTERM)  # make and the server it started
        server.wait(10)
        log.close()
