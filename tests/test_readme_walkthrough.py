"""The README's walk-through, run top to bottom as a reader would: its console blocks, in
order, in one shell, against the example app served as ``make run`` serves it.

Each command's answer must be what the README shows of it: a ``{"data": ...}`` where it
shows one, the error it shows, and never an error where it shows none. The one step a
reader does by eye, copying the reset token from the server's log, is done here by
reading that log.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README_BASE = "http://127.0.0.1:5000"
MARKER = "@@step@@"


@dataclass(frozen=True)
class Step:
    command: str
    shown: str


def walkthrough() -> list[Step]:
    """The commands between the README's walk-through markers, with what it shows each
    answers (continuation lines joined)."""
    text = (ROOT / "README.md").read_text("utf-8")
    region = text[
        text.index("<!-- walk-through: start -->") : text.index("<!-- walk-through: end -->")
    ]
    steps: list[Step] = []
    for block in re.findall(r"```console\n(.*?)```", region, re.S):
        lines = block.replace("\\\n", " ").splitlines()
        for line in lines:
            if line.startswith("$ "):
                steps.append(Step(line[2:], ""))
            elif steps:
                steps[-1] = Step(steps[-1].command, steps[-1].shown + line)
    return steps


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def make_run(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """The example app served from a copy of the checkout's ``examples``, as ``make run``
    serves it (``flask --app examples.app run``), with a fresh instance folder."""
    shutil.copytree(
        ROOT / "examples", tmp_path / "examples", ignore=shutil.ignore_patterns("__pycache__")
    )
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLASK_", "EVERSHOP_"))}
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "examples.app", "run", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/customers/openapi.json"):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((tmp_path / "server.log").read_text()) from None
                time.sleep(0.2)
        yield tmp_path, port
    finally:
        server.terminate()
        server.wait(10)
        log.close()


def test_the_readme_walkthrough_runs_top_to_bottom(make_run: tuple[Path, int]) -> None:
    folder, port = make_run
    steps = walkthrough()
    assert len(steps) > 30, steps
    script = ["set -u"]
    for step in steps:
        command = step.command.replace(README_BASE, f"http://127.0.0.1:{port}")
        if command.startswith("RESET_TOKEN="):
            # What the reader copies from the log.
            command = (
                "RESET_TOKEN=$(grep -o 'token=[A-Za-z0-9_-]*' server.log | tail -1 | cut -d= -f2)"
            )
        script += [f"echo {MARKER}", command]
    result = subprocess.run(
        ["bash", "-c", "\n".join(script)],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    answers = result.stdout.split(MARKER + "\n")[1:]
    assert len(answers) == len(steps)
    for step, answer in zip(steps, answers, strict=True):
        if step.shown.startswith('{"data"'):
            assert answer.startswith('{"data"'), (step.command, answer)
        elif '{"error"' in step.shown:
            assert '{"error"' in answer, (step.command, answer)
        else:
            assert '{"error"' not in answer, (step.command, answer)
