"""The console blocks of the README and the manual that are not walk-throughs, each run as
written, with only its placeholders (a path, an app name, a server's address) filled in.

The released install commands cannot run before the first release; their extras are
checked against the package's own instead.
"""

from __future__ import annotations

import csv
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import pytest
import sqlalchemy as sa

from .conftest import fresh_database
from .docs_blocks import DOCS_BASE, ROOT, Block, block, commands
from .evershop_source import Source
from .live_server import free_port, make_run

CHECKOUT = "/path/to/flask-evershop-customer"
BIN = Path(sys.prefix) / "bin"


def environment(**extra: str) -> dict[str, str]:
    """This process's environment without the host's own settings, with the virtual
    environment's commands first on ``PATH``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLASK_", "EVERSHOP_"))}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env


def shop_folder(folder: Path) -> Path:
    """A folder holding the example app, standing for the docs' ``yourapp``."""
    shutil.copytree(
        ROOT / "examples", folder / "examples", ignore=shutil.ignore_patterns("__pycache__")
    )
    return folder


def bash(script: str, folder: Path, env: dict[str, str], timeout: float = 120) -> str:
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


# -- make ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "example",
    [block("readme-two-commands"), block("quickstart-commands"), block("make-test")],
    ids=str,
)
def test_the_make_commands_are_the_makefiles_and_ci_runs_make_test(example: Block) -> None:
    """``make run`` is what the walk-through and browser tests start (``live_server``
    runs ``make run`` itself); ``make test`` is what CI runs, and it lints and tests."""
    for command in commands(example.text):
        target = shlex.split(command, comments=True)
        assert target[0] == "make"
        dry = subprocess.run(
            [*target, "-n", "-o", f"{sys.prefix}/.installed-stamp", f"VENV={sys.prefix}"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        if target == ["make", "run"]:
            assert f"{BIN}/flask --app examples.app run" in dry
        else:
            assert target == ["make", "test"]
            assert "ruff check" in dry and "mypy --strict" in dry and "pytest" in dry
    assert "make test" in (ROOT / ".ci" / "run").read_text("utf-8")


def test_the_security_chapters_test_command_names_real_tests() -> None:
    """The chapter's focused pytest command collects tests from files that exist (the
    whole run is ``make test``, this suite itself)."""
    make_test, focused = commands(block("security-tests").text)
    assert shlex.split(make_test, comments=True) == ["make", "test"]
    argv = shlex.split(focused, comments=True)
    assert argv[:3] == ["python", "-m", "pytest"]
    result = subprocess.run(
        [sys.executable, "-m", "pytest", *argv[3:], "--collect-only", "-q"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout
    assert re.search(r"^(\d{3,}) tests collected", result.stdout, re.M), result.stdout


# -- installing -----------------------------------------------------------------------


def pip_dry_run(requirement: str) -> dict[str, object]:
    """What ``pip install REQUIREMENT`` would install into this environment: pip's
    installation report, without installing or downloading what is already here."""
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--report", "-"]
        + [requirement],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    report: dict[str, object] = json.loads(result.stdout)
    return report


def extras_of(requirement: str) -> set[str]:
    match = re.search(r"\[([a-z,]+)\]", requirement)
    return set(match.group(1).split(",")) if match else set()


def pip_install_lines(example: Block) -> list[list[str]]:
    lines = []
    for command in commands(example.text):
        for part in command.split("&&"):
            argv = shlex.split(part, comments=True)
            if argv[:2] == ["pip", "install"]:
                lines.append(argv)
    return lines


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel ``make dist`` builds, in a copy of the checkout (its ``dist/`` and build
    folders are not this checkout's), with this interpreter's environment."""
    copy = tmp_path_factory.mktemp("checkout") / "flask-evershop-customer"
    shutil.copytree(
        ROOT,
        copy,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "dist", "build", "_build", "*.egg-info", "__pycache__", ".*cache"
        ),
    )
    venv = Path(sys.prefix)
    subprocess.run(
        ["make", "--no-print-directory", "dist", f"VENV={venv}", "-o", f"{venv}/.installed-stamp"],
        cwd=copy,
        check=True,
        capture_output=True,
        timeout=600,
    )
    (built,) = (copy / "dist").glob("*.whl")
    return built


@pytest.mark.parametrize(
    "example",
    [
        block("readme-install"),
        block("install-checkout"),
        block("migrate-install"),
        block("deploy"),
    ],
    ids=str,
)
def test_installing_from_a_checkout_or_the_wheel_works_as_written(
    example: Block, wheel: Path
) -> None:
    """Each ``pip install`` line, with the checkout's path filled in: pip accepts it and
    would install this package with the extras' packages."""
    for argv in pip_install_lines(example):
        (requirement,) = argv[2:]
        if requirement.startswith("dist/"):
            assert requirement == f"dist/{wheel.name}", "the documented wheel's name is stale"
            requirement = str(wheel)
        elif requirement.startswith(CHECKOUT):
            requirement = requirement.replace(CHECKOUT, str(ROOT))
        else:
            pytest.fail(f"{requirement} is not installable before the first release")
        installs = pip_dry_run(requirement)["install"]
        assert isinstance(installs, list)
        names = {item["metadata"]["name"].lower() for item in installs}
        assert "flask-evershop-customer" in names
        requires = installs[
            [i["metadata"]["name"].lower() for i in installs].index("flask-evershop-customer")
        ]["metadata"]["requires_dist"]
        for extra in extras_of(requirement):
            assert any(f'extra == "{extra}"' in line for line in requires), extra
    assert "dist:" in (ROOT / "Makefile").read_text("utf-8")


def test_the_released_install_commands_name_the_packages_extras() -> None:
    """Until the first release these cannot run; the package name and every extra they
    name are the package's own."""
    package = metadata.metadata("flask-evershop-customer")
    lines = pip_install_lines(block("install-released"))
    assert lines
    for argv in lines:
        (requirement,) = argv[2:]
        assert re.sub(r"\[.*\]", "", requirement) == package["Name"]
        assert extras_of(requirement) <= set(package.get_all("Provides-Extra") or ())


# -- operating -------------------------------------------------------------------------


@pytest.fixture
def postgres_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with fresh_database("postgresql", tmp_path_factory) as url:
        yield url


def test_the_deployment_commands_upgrade_and_serve(postgres_url: str, tmp_path: Path) -> None:
    """The deployment chapter's commands, on PostgreSQL, with the example app as
    ``yourapp``: the schema is upgraded once, then gunicorn serves the API."""
    folder = shop_folder(tmp_path)
    port = free_port()
    secret = tmp_path / "secret-key"
    secret.write_text(secrets.token_hex(32) + "\n", "utf-8")
    script = []
    for command in commands(block("deploy").text):
        if command.startswith("pip install"):
            continue  # run by test_installing_from_a_checkout_or_the_wheel_works_as_written
        command = command.replace("yourapp:create_app()", "examples.app:create_app()")
        command = command.replace("--app yourapp", "--app examples.app")
        command = re.sub(r"postgresql\+psycopg://[^\"]*", postgres_url, command)
        command = command.replace("0.0.0.0:8000", f"127.0.0.1:{port}")
        command = command.replace("/etc/shop/secret-key", str(secret))
        if command.startswith("gunicorn"):
            command = f"exec {command} > gunicorn.log 2>&1"
        script.append(command)
    # The example app would upgrade at start-up too; the chapter upgrades first.
    env = environment(FLASK_EXAMPLE_AUTO_UPGRADE="false")
    server = subprocess.Popen(
        ["bash", "-euo", "pipefail", "-c", "\n".join(script)],
        cwd=folder,
        env=env,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                url = f"http://127.0.0.1:{port}/api/customers/openapi.json"
                with urllib.request.urlopen(url) as answer:
                    assert json.load(answer)["openapi"].startswith("3.1")
                    break
            except OSError:
                assert server.poll() is None, (folder / "gunicorn.log").read_text()
                assert time.monotonic() < deadline
                time.sleep(0.2)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(30)
    check = subprocess.run(
        [str(BIN / "flask"), "--app", "examples.app", "customers", "check-schema"],
        cwd=folder,
        env=environment(FLASK_SQLALCHEMY_DATABASE_URI=postgres_url),
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stdout + check.stderr


def test_the_purge_cron_line_runs(tmp_path: Path) -> None:
    """The crontab line's command, in a shop folder with a ``.venv`` and ``yourapp``."""
    line = block("purge-cron").text.strip()
    fields = line.split(None, 5)
    assert len(fields) == 6 and all(re.fullmatch(r"[\d*/,-]+", f) for f in fields[:5]), line
    folder = shop_folder(tmp_path)
    (folder / ".venv").symlink_to(sys.prefix)
    command = fields[5].replace("/srv/shop", str(folder)).replace("yourapp", "examples.app")
    database = f"sqlite:///{tmp_path / 'shop.sqlite'}"
    out = bash(command, folder, environment(FLASK_SQLALCHEMY_DATABASE_URI=database))
    assert re.fullmatch(
        r"Deleted 0 expired or revoked sessions, 0 refresh tokens, 0 admin sessions, "
        r"0 reset tokens and 0 old throttling records\.\n",
        out,
    ), out


def test_the_migration_dry_run_reads_an_evershop_database(
    postgres_url: str, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    """The migration chapter's dry run against an EverShop (HEAD) database: it prints
    the line the chapter shows, with this database's counts, and writes nothing."""
    (command,) = commands(block("migrate-dry-run").text)
    shown = block("migrate-dry-run").text.splitlines()[-1]
    with fresh_database("postgresql", tmp_path_factory) as source_url:
        source = Source("head", source_url)
        try:
            source.customer("ann@example.com")
            source.customer("ANN@example.com")  # one email by its canonical form: skipped
            source.customer("bob@example.com")
        finally:
            source.dispose()
        folder = shop_folder(tmp_path)
        command = command.replace("--app yourapp", "--app examples.app")
        command = re.sub(r'"postgresql\+psycopg://[^"]*"', shlex.quote(source_url), command)
        out = bash(command, folder, environment(FLASK_SQLALCHEMY_DATABASE_URI=postgres_url))
    assert re.search(re.sub(r"\d+", r"\\d+", re.escape(shown)), out), (shown, out)
    assert "Would import 1 customers and 0 addresses; 0 updated, 0 already here; " in out
    assert "skipped 2 customers and 0 addresses" in out
    with (folder / "evershop-import-report.csv").open(encoding="utf-8") as report:
        assert len(list(csv.DictReader(report))) == 2
    engine = sa.create_engine(postgres_url)
    try:
        with engine.connect() as connection:
            assert connection.scalar(sa.text("SELECT count(*) FROM evershop_customer")) == 0
    finally:
        engine.dispose()


def test_the_openapi_curl_line_prints_the_document(tmp_path: Path) -> None:
    (command,) = commands(block("openapi-curl").text)
    with make_run(tmp_path) as live:
        out = bash(command.replace(DOCS_BASE, live.url), tmp_path, environment())
    assert json.loads(out)["openapi"].startswith("3.1")
