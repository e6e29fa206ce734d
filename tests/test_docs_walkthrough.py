"""The docs' walk-throughs, each run top to bottom as a reader would: its console blocks,
in order, in one shell, against the example app served as ``make run`` serves it.

Each command's answer must be what the docs show of it: exactly the answer shown where
nothing of it is elided (``…``), else every literal ``"key":value`` the docs show (the
times aside, which differ on every run), and never an error where they show none. The one step a
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

from .docs_blocks import DOCS_BASE, blocks_of, documents
from .live_server import LiveServer, make_run

MARKER = "@@step@@"
#: A ``"key":value`` pair of a shown answer whose value is a JSON scalar.
PAIR = re.compile(r'"([A-Za-z0-9_]+)":("(?:[^"\\]|\\.)*"|-?[0-9]+|true|false|null)')
#: Shown values that differ on every run.
VARYING = {"created_at", "updated_at", "expires_at", "user_agent"}


@dataclass(frozen=True)
class Step:
    command: str
    shown: str


def walkthrough(path: Path) -> list[Step]:
    """The commands of a document's walk-through, with what it shows each answers
    (continuation lines joined)."""
    steps: list[Step] = []
    for block in blocks_of(path):
        if not (block.in_walkthrough and block.language == "console"):
            continue
        for line in block.text.replace("\\\n", " ").splitlines():
            if line.startswith("$ "):
                steps.append(Step(line[2:], ""))
            elif steps:
                steps[-1] = Step(steps[-1].command, steps[-1].shown + line)
    return steps


WALKTHROUGHS = [path for path in documents() if walkthrough(path)]


def test_the_walkthroughs_are_found() -> None:
    """The quick start's short one and the HTTP API chapter's long one."""
    assert [path.name for path in WALKTHROUGHS] == ["api.md", "quickstart.md"]
    assert len(walkthrough(WALKTHROUGHS[0])) > 30


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveServer]:
    with make_run(tmp_path) as server:
        yield server


@pytest.mark.parametrize("path", WALKTHROUGHS, ids=lambda path: path.name)
def test_the_walkthrough_runs_top_to_bottom(path: Path, live: LiveServer) -> None:
    steps = walkthrough(path)
    script = ["set -euo pipefail"]
    for step in steps:
        command = step.command.replace(DOCS_BASE, live.url)
        if command.startswith("RESET_TOKEN="):
            # What the reader copies from the log, once the server has written it (the
            # token is issued after the answer is sent): up to ten seconds.
            command = (
                "for _ in $(seq 100); do grep -q 'token=' server.log && break; sleep 0.1; done\n"
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
        assert_answer_as_shown(step, answer.rstrip("\n"))


def assert_answer_as_shown(step: Step, answer: str) -> None:
    shown = step.shown
    if not shown:
        assert '{"error"' not in answer, (step.command, answer)
        return
    if "…" not in shown:
        assert answer == shown, step.command
        return
    assert answer.startswith(shown[: shown.index(":") + 1]), (step.command, answer)
    for key, value in PAIR.findall(shown):
        if "…" not in value and key not in VARYING:
            assert f'"{key}":{value}' in answer, (step.command, key, answer)
