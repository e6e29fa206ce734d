"""The code and console blocks of the README and the manual, for the tests that run them.

A block outside a walk-through is named by an HTML comment on the line before its fence,
``<!-- block: NAME -->`` (invisible on GitHub and in the built manual); a test fetches it
with :func:`block`. The blocks between ``<!-- walk-through: start -->`` and
``<!-- walk-through: end -->`` are run together, in order, by the walk-through test.
``tests/test_docs_blocks.py`` checks that every block is one or the other, and that every
name is fetched by some test.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: Where the docs' examples say the example app runs (``make run``'s address).
DOCS_BASE = "http://127.0.0.1:5000"

_FENCE = re.compile(
    r"^(?P<indent> *)```(?P<info>[^\n`]*)\n(?P<body>.*?)^(?P=indent)```", re.M | re.S
)
_NAME = re.compile(r"<!-- block: ([a-z0-9-]+) -->")


@dataclass(frozen=True)
class Block:
    """One fenced block: where it is, its language, its text, and how it is claimed."""

    path: Path
    line: int
    language: str
    text: str
    name: str | None
    in_walkthrough: bool

    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"

    def __str__(self) -> str:
        return self.name or self.where()


def documents() -> list[Path]:
    """The README and every chapter of the manual."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def blocks_of(path: Path) -> list[Block]:
    """The fenced blocks of one document, in order (MyST directives included)."""
    text = path.read_text("utf-8")
    regions = [
        (m.start(), text.index("<!-- walk-through: end -->", m.start()))
        for m in re.finditer(r"<!-- walk-through: start -->", text)
    ]
    found = []
    for match in _FENCE.finditer(text):
        before = text[: match.start()]
        name = _NAME.fullmatch(before[:-1].rsplit("\n", 1)[-1].strip())
        indent = len(match.group("indent"))
        body = "".join(line[indent:] + "\n" for line in match.group("body").splitlines())
        found.append(
            Block(
                path=path,
                line=before.count("\n") + 1,
                language=match.group("info").strip(),
                text=body,
                name=name.group(1) if name else None,
                in_walkthrough=any(start < match.start() < end for start, end in regions),
            )
        )
    return found


def all_blocks() -> list[Block]:
    return [block for path in documents() for block in blocks_of(path)]


def block(name: str) -> Block:
    """The block named ``name``, wherever it is."""
    named = [b for b in all_blocks() if b.name == name]
    assert len(named) == 1, f"{len(named)} blocks are named {name!r}"
    return named[0]


def commands(console: str) -> list[str]:
    """The ``$ `` lines of a console block, continuation lines joined, prompts removed."""
    joined = console.replace("\\\n", " ")
    return [line[2:] for line in joined.splitlines() if line.startswith("$ ")]
