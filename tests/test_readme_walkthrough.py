"""The README's walk-through, run top to bottom as a reader would: its console blocks, in
order, in one shell, against the example app served as ``make run`` serves it.

Each command's answer must be what the README shows of it: a ``{"data": ...}`` where it
shows one, the error it shows, and never an error where it shows none. The one step a
reader does by eye, copying the reset token from the server's log, is done here by
reading that log.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .live_server import ROOT, LiveServer, make_run

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


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveServer]:
    with make_run(tmp_path) as server:
        yield server


def test_the_readme_walkthrough_runs_top_to_bottom(live: LiveServer) -> None:
    steps = walkthrough()
    assert len(steps) > 30, steps
    script = ["set -u"]
    for step in steps:
        command = step.command.replace(README_BASE, live.url)
        if command.startswith("RESET_TOKEN="):
            # What the reader copies from the log.
            command = (
                "RESET_TOKEN=$(grep -o 'token=[A-Za-z0-9_-]*' server.log | tail -1 | cut -d= -f2)"
            )
        script += [f"echo {MARKER}", command]
    result = subprocess.run(
        ["bash", "-c", "\n".join(script)],
        cwd=live.folder,
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
