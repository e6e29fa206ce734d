"""No example in the docs goes unrun: every code and console block of the README and the
manual is a walk-through's console block (run by ``test_docs_walkthrough``), a Sphinx
directive (run by ``make docs``), or a named block that some test fetches by its name."""

from __future__ import annotations

import ast
import re

from .docs_blocks import ROOT, all_blocks, documents

LANGUAGES = {"console", "python", "text"}
#: The Sphinx directives the docs use; ``make docs`` runs them (a ``{code-block}`` would
#: be an example no test runs).
DIRECTIVES = {"{toctree}", "{eval-rst}", "{include}"}


def fetched_names() -> set[str]:
    """The names the tests fetch, each with a literal ``block("NAME")``."""
    sources = (path.read_text("utf-8") for path in (ROOT / "tests").glob("test_*.py"))
    return {name for source in sources for name in re.findall(r'block\("([a-z0-9-]+)"\)', source)}


def test_every_block_is_run_by_a_walkthrough_make_docs_or_a_named_test() -> None:
    unclaimed = [
        block.where()
        for block in all_blocks()
        if block.name is None
        and block.language.split(" ")[0] not in DIRECTIVES
        and not (block.in_walkthrough and block.language == "console")
    ]
    assert unclaimed == [], "name these blocks and run them in a test"


def test_every_named_block_is_fetched_by_a_test() -> None:
    names = [block.name for block in all_blocks() if block.name]
    assert len(names) == len(set(names)), "block names must be unique"
    assert sorted(set(names) - fetched_names()) == []
    assert sorted(fetched_names() - set(names)) == [], "a test fetches a block that is gone"


def test_blocks_are_of_known_kinds() -> None:
    """Console blocks show commands; every other block is Python, plain text or a
    directive, so nothing is silently left to the reader."""
    for block in all_blocks():
        assert block.language.split(" ")[0] in LANGUAGES | DIRECTIVES, block.where()
        if block.language == "console":
            assert block.text.startswith("$ "), block.where()


def test_the_docs_name_only_tests_that_exist() -> None:
    """The docs cite tests as proof (the security chapter maps ASVS requirements to them):
    renaming a test file or a test must not orphan a citation."""
    cited: set[tuple[str, str]] = set()
    for path in [*documents(), ROOT / "SECURITY.md"]:
        cited |= set(re.findall(r"(tests/\w+\.py)(?:::(test_\w+))?", path.read_text("utf-8")))
    assert len(cited) > 50
    for file, name in sorted(cited):
        assert (ROOT / file).exists(), f"the docs name {file}, which does not exist"
        if name:
            tree = ast.parse((ROOT / file).read_text("utf-8"))
            names = {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}
            assert name in names, f"the docs name {file}::{name}, which does not exist"
