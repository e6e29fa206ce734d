"""Several gunicorn workers, one database: the example app as it is deployed.

The workers keep no state of their own; every request checks the session row. So a
logout or a password change made through one worker is seen by all of them, and several
worker processes writing one SQLite file (WAL, busy timeout) wait for each other instead
of failing. Every request opens its own connection (no keep-alive), so the requests spread
over the workers; the example app names the answering process in ``X-Worker-Pid``.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from .conftest import CHEAP_HASH, OTHER_PASSWORD, PASSWORD, SECRET_KEY, fresh_database
from .conftest import selected_backends as backends

ROOT = Path(__file__).resolve().parent.parent
WORKERS = 4
#: Requests that must all be refused, spread over the workers.
REQUESTS = 200
#: Upper bound on the requests made while waiting to have heard from every worker.
MAX_REQUESTS = 1000
CLIENT_THREADS = 8
START_TIMEOUT = 60


@dataclass
class Reply:
    status: int
    pid: int
    body: Any


@dataclass
class Server:
    """A running gunicorn and a tiny HTTP client for it."""

    port: int
    process: subprocess.Popen[bytes]
    log: Path
    seen_workers: set[int] = field(default_factory=set)

    def call(self, method: str, path: str, body: Any = None, token: str | None = None) -> Reply:
        headers = {"Connection": "close"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request(method, path, body=data, headers=headers)
            response = connection.getresponse()
            raw = response.read()
            pid = int(response.getheader("X-Worker-Pid", "0"))
        finally:
            connection.close()
        self.seen_workers.add(pid)
        return Reply(response.status, pid, json.loads(raw) if raw else None)

    def workers(self) -> set[int]:
        """The pids of the master's worker processes."""
        children = set()
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                fields = stat.read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) == self.process.pid:
                    children.add(int(stat.parent.name))
        return children

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def _environment(url: str, **extra: str) -> dict[str, str]:
    """The example app's configuration, as FLASK_* variables (values parsed as JSON
    where they are JSON: "true" is True, a URL stays a string)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLASK_")}
    env.update(
        FLASK_SQLALCHEMY_DATABASE_URI=url,
        FLASK_SECRET_KEY=SECRET_KEY,
        FLASK_EXAMPLE_ADMIN_EMAIL="admin@example.com",
        FLASK_EXAMPLE_ADMIN_PASSWORD="workers-admin-password",
        FLASK_EVERSHOP_CUSTOMER_PASSWORD_HASH_METHOD=CHEAP_HASH,
        FLASK_EVERSHOP_CUSTOMER_ALLOW_WEAK_PASSWORD_HASH="true",
        FLASK_EXAMPLE_EXPOSE_WORKER_PID="true",
        # Every client here is 127.0.0.1: no limit on registrations per address.
        FLASK_EVERSHOP_CUSTOMER_REGISTRATIONS_PER_IP="0",
        PYTHONPATH=str(ROOT),
    )
    env.update(extra)
    return env


@contextlib.contextmanager
def gunicorn(
    url: str, tmp_path: Path, workers: int = WORKERS, *, preload: bool = False
) -> Iterator[Server]:
    """``flask db upgrade heads``, then gunicorn with ``workers`` workers on a free port
    of 127.0.0.1; stopped (and killed if need be) at the end. With ``preload`` the app is
    made once in the master, which upgrades the schema itself, and the workers fork from
    it."""
    env = _environment(url, FLASK_EXAMPLE_AUTO_UPGRADE="true" if preload else "false")
    if not preload:
        upgrade = subprocess.run(
            [sys.executable, "-m", "flask", "--app", "examples.app", "db", "upgrade", "heads"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert upgrade.returncode == 0, upgrade.stdout + upgrade.stderr

    # The listening socket is made here and handed over: no race for a free port.
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    listener.set_inheritable(True)
    port = listener.getsockname()[1]
    log = tmp_path / "gunicorn.log"
    with open(log, "wb") as log_file:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--workers",
                str(workers),
                "--bind",
                f"fd://{listener.fileno()}",
                "--graceful-timeout",
                "5",
                *(["--preload"] if preload else []),
                "examples.app:create_app()",
            ],
            cwd=ROOT,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            pass_fds=(listener.fileno(),),
        )
    listener.close()
    server = Server(port, process, log)
    known: set[int] = set()
    try:
        _wait_until_ready(server, workers)
        known = server.workers()
        yield server
    finally:
        known |= server.workers()
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)
        for pid in known:  # workers outliving their master would be ours to end
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


def _wait_until_ready(server: Server, workers: int) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        assert server.process.poll() is None, f"gunicorn exited:\n{server.output()}"
        try:
            if (
                server.call("GET", "/api/customers/openapi.json").status == 200
                and len(server.workers()) == workers
            ):
                return
        except OSError:
            pass
        assert time.monotonic() < deadline, f"gunicorn is not ready:\n{server.output()}"
        time.sleep(0.2)


def spread(server: Server, request: Callable[[], Reply], *, at_least: int) -> list[Reply]:
    """Make ``request`` from several threads at once, ``at_least`` times and until every
    worker has answered one (at most MAX_REQUESTS)."""
    workers = server.workers()
    assert len(workers) == WORKERS
    replies: list[Reply] = []
    with ThreadPoolExecutor(CLIENT_THREADS) as pool:
        while len(replies) < at_least or not workers <= {r.pid for r in replies}:
            assert len(replies) < MAX_REQUESTS, Counter(r.pid for r in replies)
            replies.extend(pool.map(lambda _: request(), range(CLIENT_THREADS * 5)))
    assert {r.pid for r in replies} == workers, "a reply came from an unknown process"
    return replies


@pytest.fixture
def postgres_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if "postgresql" not in backends():
        pytest.skip("PostgreSQL is not among EVERSHOP_TEST_DATABASES")
    with fresh_database("postgresql", tmp_path_factory) as url:
        yield url


def test_every_worker_sees_logout_and_password_change(postgres_url: str, tmp_path: Path) -> None:
    with gunicorn(postgres_url, tmp_path) as server:
        email = "alice@example.com"
        created = server.call(
            "POST", "/api/customers", {"email": email, "password": PASSWORD, "full_name": "A"}
        )
        assert created.status == 200, created.body
        url = f"/api/customers/{created.body['data']['uuid']}"

        def login(password: str = PASSWORD) -> dict[str, str]:
            reply = server.call(
                "POST", "/api/customers/sessions", {"email": email, "password": password}
            )
            assert reply.status == 200, reply.body
            return reply.body["data"]  # type: ignore[no-any-return]

        def check(token: str) -> Callable[[], Reply]:
            return lambda: server.call("PATCH", url, {}, token=token)

        # Logged in: every worker accepts the token.
        session = login()
        accepted = spread(server, check(session["token"]), at_least=CLIENT_THREADS)
        assert {r.status for r in accepted} == {200}

        # Logged out through one worker: every worker refuses it, every time.
        sid = session["sid"]
        logout = server.call("DELETE", f"/api/customers/sessions/{sid}", token=session["token"])
        assert logout.status == 200, logout.body
        refused = spread(server, check(session["token"]), at_least=REQUESTS)
        assert Counter(r.status for r in refused) == {401: len(refused)}
        assert all(r.body["error"]["status"] == 401 for r in refused)

        # A password change through one worker ends the other sessions on every worker;
        # the session that made the change goes on.
        changer, other = login(), login()
        body = {"password": OTHER_PASSWORD, "current_password": PASSWORD}
        changed = server.call("PATCH", url, body, token=changer["token"])
        assert changed.status == 200, changed.body
        refused = spread(server, check(other["token"]), at_least=REQUESTS // 2)
        assert Counter(r.status for r in refused) == {401: len(refused)}
        kept = spread(server, check(changer["token"]), at_least=CLIENT_THREADS)
        assert {r.status for r in kept} == {200}
        old = server.call("POST", "/api/customers/sessions", {"email": email, "password": PASSWORD})
        assert old.status == 400
        login(OTHER_PASSWORD)
        assert server.process.poll() is None, server.output()


def test_worker_processes_writing_one_sqlite_file_wait_instead_of_failing(tmp_path: Path) -> None:
    if "sqlite" not in backends():
        pytest.skip("SQLite is not among EVERSHOP_TEST_DATABASES")
    url = f"sqlite:///{tmp_path / 'shop.sqlite'}"
    with gunicorn(url, tmp_path) as server:

        def customer_life(n: int) -> list[int]:
            """Register, log in, rename three times, race for one shared email, log out."""
            email = f"writer{n}@example.com"
            body = {"email": email, "password": PASSWORD, "full_name": f"Writer {n}"}
            created = server.call("POST", "/api/customers", body)
            session = server.call("POST", "/api/customers/sessions", body)
            statuses = [created.status, session.status]
            if statuses != [200, 200]:
                return statuses  # counted below
            token = session.body["data"]["token"]
            me = f"/api/customers/{created.body['data']['uuid']}"
            for round_ in range(3):
                reply = server.call("PATCH", me, {"full_name": f"W{n}.{round_}"}, token=token)
                statuses.append(reply.status)
            shared = {**body, "email": "SHARED@example.com"}
            statuses.append(server.call("POST", "/api/customers", shared).status)
            sid = session.body["data"]["sid"]
            statuses.append(
                server.call("DELETE", f"/api/customers/sessions/{sid}", token=token).status
            )
            return statuses

        with ThreadPoolExecutor(CLIENT_THREADS) as pool:
            lives = list(pool.map(customer_life, range(CLIENT_THREADS * 4)))

        statuses = Counter(status for life in lives for status in life)
        # One registration of the shared email wins, all the others are 409; everything
        # else succeeds. Not a single 500 or 503 ("database is locked").
        assert statuses[409] == len(lives) - 1, statuses
        assert set(statuses) == {200, 409}, statuses
        assert len(server.seen_workers - {0}) > 1, "the writes did not spread over workers"
        assert server.process.poll() is None, server.output()


def test_preloaded_workers_share_no_database_connection(postgres_url: str, tmp_path: Path) -> None:
    """``gunicorn --preload``: the master makes the app (and upgrades the schema) before
    forking; no connection it used may end up shared by the workers."""
    with gunicorn(postgres_url, tmp_path, workers=2, preload=True) as server:

        def register(n: int) -> int:
            body = {"email": f"p{n}@example.com", "password": PASSWORD, "full_name": "P"}
            return server.call("POST", "/api/customers", body).status

        with ThreadPoolExecutor(CLIENT_THREADS) as pool:
            statuses = Counter(pool.map(register, range(CLIENT_THREADS * 5)))
        assert statuses == {200: CLIENT_THREADS * 5}, (statuses, server.output())
        assert len(server.seen_workers) == 2
