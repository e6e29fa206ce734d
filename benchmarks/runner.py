"""The benchmark run: databases, servers, scenarios, the table and the results file.

Side by side, request by request: each keep-alive connection alternates a library
request and its baseline's (L B L B ..., the next connection B L B L ...), so both meet
the same moments, workers and noisy neighbours. With one connection per gunicorn worker
no request waits behind another, so a response's latency is its service time, and each
side's throughput follows from Little's law: workers / mean latency, what the workers
sustain serving that endpoint alone. A mean is used, not a median, because a stall (a
checkpoint, a neighbour's burst) costs throughput whichever request it hits. With few
samples (the hashing endpoints), p99 is close to the slowest response.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import random
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from werkzeug.security import generate_password_hash

from flask_evershop_customer.clock import utcnow
from flask_evershop_customer.config import DEFAULTS

from . import client, database, importing, machine, server

REPO = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
PASSWORD = "correct horse battery staple"
#: The address every address request adds (the library checks and normalises it).
ADDRESS = {
    "full_name": "Bench Customer",
    "address_1": "1600 Amphitheatre Parkway",
    "city": "Mountain View",
    "postcode": "94043",
    "telephone": "+16502530000",
    "country": "US",
    "province": "US-CA",
}
#: A cheap hash for the bulk rows: the endpoints measured with them never check it.
CHEAP_HASH_METHOD = "pbkdf2:sha256:1"
SECRET_KEY = "bench-" + secrets.token_hex(24)
ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "bench-admin-" + secrets.token_hex(8)
APP = "benchmarks.wsgi:application"
DEFAULT_HASH_METHOD: str = DEFAULTS["EVERSHOP_CUSTOMER_PASSWORD_HASH_METHOD"]
#: Targets: library / baseline throughput, and the token check's cost
#: with the large table over the small one.
TARGETS = {
    "token_check": 0.95,
    "get_me": 0.95,
    "admin_list": 0.85,
    "patch": 0.95,
    "logout": 0.95,
    "delete": 0.95,
    "login": 0.95,
    "create": 0.95,
    "trusted_token": 0.9,
    "refresh": 0.85,
    "add_address": 0.85,
    "list_addresses": 0.85,
    "reset_request": 0.95,
}
#: Comparisons whose two sides must take as long as each other: their median latencies
#: within the target of each other, either way (a reset request for an email with an
#: account against one without must not tell them apart).
SYMMETRIC = {"reset_request"}
SCALING_TARGET = 1.2
#: Every simulated client is 127.0.0.1: a per-address limit the reset requests never reach.
RESET_REQUESTS_PER_IP = 10**9
BASELINES = {
    "token_check": "the credential read (session and customer, one join)",
    "get_me": "the credential read (session and customer, one join)",
    "admin_list": "the admin session read, the page, the count",
    "patch": "the credential read, one write, the session share-locked",
    "logout": "one primary-key read, one write",
    "delete": "the credential read, the customer and session locked, three writes",
    "login": "check_password_hash only",
    "create": "generate_password_hash only",
    "trusted_token": "verify the JWT (PyJWT) only",
    "refresh": "the token read (with session, customer), spend it, insert the next, sign a JWT",
    "add_address": "the credential read, the customer locked, the session held, count, insert",
    "list_addresses": "the credential read, the customer's addresses",
    "reset_request": "the same request for an email without an account",
}


# -- options ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    database: str
    workers: int
    per_worker: int
    small_rows: int
    large_rows: int
    seconds: float
    hash_seconds: float
    warmup: float
    output: Path
    quick: bool
    check: bool
    hash_method: str


def parse_options(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Benchmark the library against bare Flask baselines, side by side.",
    )
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument(
        "--database",
        choices=("auto", "postgresql", "sqlite"),
        default="auto",
        help="auto (default): PostgreSQL on 127.0.0.1:5432 when it answers, else SQLite",
    )
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument(
        "--per-worker",
        type=int,
        default=1,
        help="keep-alive connections per worker (more adds queueing to every latency)",
    )
    parser.add_argument("--small-rows", type=int, help="customers in the small database")
    parser.add_argument("--large-rows", type=int, help="customers in the large database")
    parser.add_argument("--seconds", type=float, help="seconds per non-hash comparison")
    parser.add_argument("--hash-seconds", type=float, help="seconds for login and create")
    parser.add_argument("--warmup", type=float, help="warm-up seconds per comparison")
    parser.add_argument("--output", type=Path, help="results file (JSON)")
    parser.add_argument(
        "--hash-method",
        default=DEFAULT_HASH_METHOD,
        help="password hash method (default: the library's); any other makes the login"
        " and create ratios meaningless, for smoke runs only",
    )
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    quick = args.quick

    def pick(value: Any, full: Any, short: Any) -> Any:
        return value if value is not None else (short if quick else full)

    options = Options(
        database=args.database,
        workers=max(1, args.workers),
        per_worker=max(1, args.per_worker),
        small_rows=pick(args.small_rows, 1_000, 1_000),
        large_rows=pick(args.large_rows, 100_000, 10_000),
        seconds=pick(args.seconds, 10.0, 2.0),
        hash_seconds=pick(args.hash_seconds, 45.0, 5.0),
        warmup=pick(args.warmup, 1.0, 0.3),
        output=pick(args.output, RESULTS / "latest.json", RESULTS / "quick.json"),
        quick=quick,
        check=args.check,
        hash_method=args.hash_method,
    )
    if not 10 <= options.small_rows <= options.large_rows:
        parser.error("need 10 <= --small-rows <= --large-rows")
    return options


# -- measuring ----------------------------------------------------------------------------


@dataclass
class Series:
    """One kind of request and what was measured of it."""

    name: str
    make_request: client.RequestFactory
    #: How many workers serve it: its throughput alone is workers / mean latency.
    workers: int = 1
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str = ""
    exhausted: bool = False

    def record(self, phase: client.PhaseResult) -> None:
        self.latencies.extend(phase.latencies)
        self.errors += phase.errors
        self.first_error = self.first_error or phase.first_error
        self.exhausted = self.exhausted or phase.exhausted

    @property
    def rate(self) -> float:
        """Requests per second the workers sustain on this request alone (Little's law)."""
        if not self.latencies:
            return 0.0
        return self.workers * len(self.latencies) / sum(self.latencies)

    @property
    def median(self) -> float:
        """The median latency in seconds (0 without any)."""
        return statistics.median(self.latencies) if self.latencies else 0.0

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.latencies)

        def percentile(q: float) -> float | None:
            if not ordered:
                return None
            return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 2)

        return {
            "requests_per_second": round(self.rate, 1),
            "p50_ms": percentile(0.50),
            "p99_ms": percentile(0.99),
            "requests": len(self.latencies),
            "errors": self.errors,
            **({"first_error": self.first_error} if self.first_error else {}),
            **({"ran_out_of_rows": True} if self.exhausted else {}),
        }


def measure(
    lanes: list[client.Lane], series: list[Series], *, seconds: float, warmup: float
) -> None:
    """Warm up, then drive ``series`` interleaved over ``lanes`` for ``seconds``."""
    factories = [s.make_request for s in series]
    client.run_mix(lanes, factories, duration=warmup)
    for one, phase in zip(series, client.run_mix(lanes, factories, duration=seconds), strict=True):
        one.record(phase)


def cycling(requests: list[list[bytes]]) -> client.RequestFactory:
    """Connection ``i`` cycles through ``requests[i]``."""
    iterators = [itertools.cycle(r) for r in requests]
    return lambda index: next(iterators[index])


def consuming(requests: list[bytes]) -> client.RequestFactory:
    """Each request once (logout and DELETE use their row up), then None."""
    iterator = iter(requests)
    return lambda _index: next(iterator, None)


def numbered(build: Callable[[int], bytes]) -> client.RequestFactory:
    """A fresh request for every call, numbered from 0."""
    counter = itertools.count()
    return lambda _index: build(next(counter))


@dataclass(frozen=True)
class Comparison:
    name: str
    label: str
    library: Series
    baseline: Series
    kind: str

    def row(self, statements: dict[str, int]) -> dict[str, Any]:
        ratio = None
        target = TARGETS.get(self.kind)
        met = None
        if self.kind in SYMMETRIC:
            library, baseline = self.library.median, self.baseline.median
            if library and baseline:
                ratio = round(library / baseline, 3)
            if target is not None:
                met = ratio is not None and target <= ratio <= 1 / target
        else:
            if self.library.rate and self.baseline.rate:
                ratio = round(self.library.rate / self.baseline.rate, 3)
            if target is not None:
                met = ratio is not None and ratio >= target
        return {
            "name": self.name,
            "label": self.label,
            "library": self.library.summary(),
            "baseline": self.baseline.summary(),
            "ratio": ratio,
            "target": target,
            "met": met,
            "statements": statements.get(self.kind),
            "baseline_does": BASELINES[self.kind],
        }


# -- the app in this process: migrations, bulk rows, tokens, statement counts ------------


def app_config(url: str, hash_method: str) -> dict[str, Any]:
    return {
        "SQLALCHEMY_DATABASE_URI": url,
        "SECRET_KEY": SECRET_KEY,
        "EXAMPLE_ADMIN_EMAIL": ADMIN_EMAIL,
        "EXAMPLE_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "EVERSHOP_CUSTOMER_PASSWORD_HASH_METHOD": hash_method,
        "EVERSHOP_CUSTOMER_ALLOW_WEAK_PASSWORD_HASH": hash_method != DEFAULT_HASH_METHOD,
        # As the servers' (see server_env): the counters are in the same database.
        "EVERSHOP_CUSTOMER_LOGIN_MAX_FAILURES_PER_IP": RESET_REQUESTS_PER_IP,
    }


def server_env(url: str, hash_method: str, stored_hash: str) -> dict[str, str]:
    """gunicorn's environment: ours, minus any Flask or EverShop settings, plus the
    example app's configuration (``FLASK_*``, as it reads in production)."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("FLASK_", "EVERSHOP_"))
    }
    env.update(
        FLASK_SQLALCHEMY_DATABASE_URI=url,
        FLASK_SECRET_KEY=SECRET_KEY,
        FLASK_EXAMPLE_ADMIN_EMAIL=ADMIN_EMAIL,
        FLASK_EXAMPLE_ADMIN_PASSWORD=ADMIN_PASSWORD,
        # Migrated once by this process; workers racing to migrate would fail.
        FLASK_EXAMPLE_AUTO_UPGRADE="false",
        FLASK_EVERSHOP_CUSTOMER_PASSWORD_HASH_METHOD=hash_method,
        # Every simulated client is 127.0.0.1: no limit on registrations per address, and
        # a limit on reset requests per address that the bench never reaches (each
        # email is still counted: every reset request names another one).
        FLASK_EVERSHOP_CUSTOMER_REGISTRATIONS_PER_IP="0",
        FLASK_EVERSHOP_CUSTOMER_LOGIN_MAX_FAILURES_PER_IP=str(RESET_REQUESTS_PER_IP),
        FLASK_EVERSHOP_CUSTOMER_ALLOW_WEAK_PASSWORD_HASH=json.dumps(
            hash_method != DEFAULT_HASH_METHOD
        ),
        EVERSHOP_BENCH_HASH_METHOD=hash_method,
        EVERSHOP_BENCH_STORED_HASH=stored_hash,
        PYTHONDONTWRITEBYTECODE="1",
    )
    return env


@dataclass
class Shop:
    """One migrated, seeded database, with an in-process app that signs its tokens."""

    url: str
    app: Any
    rows: list[database.Seeded]
    tokens: dict[str, str] = field(default_factory=dict)
    access_tokens: dict[str, str] = field(default_factory=dict)

    def token(self, row: database.Seeded) -> str:
        """A login token of ``row``'s session (two days)."""
        if row.sid not in self.tokens:
            with self.app.app_context():
                codec = self.app.extensions["evershop_customer"].tokens
                self.tokens[row.sid] = codec.issue(row.uuid, row.sid, utcnow())
        return self.tokens[row.sid]

    def access_token(self, row: database.Seeded) -> str:
        """An access token of ``row``'s session, as a refresh answers it."""
        if row.sid not in self.access_tokens:
            with self.app.app_context():
                state = self.app.extensions["evershop_customer"]
                lifetime = state.settings.access_token_lifetime
                self.access_tokens[row.sid] = state.tokens.issue(
                    row.uuid, row.sid, utcnow(), lifetime, access=True
                )
        return self.access_tokens[row.sid]

    def refresh_tokens(self, rows: list[database.Seeded]) -> list[str]:
        """An unspent refresh token for each row's session."""
        from examples.app import customers, db

        with self.app.app_context():
            settings = self.app.extensions["evershop_customer"].settings
            return database.seed_refresh_tokens(
                db.engine,
                customers.models.RefreshToken.__table__,
                rows,
                key=settings.refresh_key,
                now=utcnow(),
                lifetime=settings.token_lifetime,
            )

    def admin_session(self) -> tuple[str, str]:
        """A live admin session of the example's admin: its cookie value and its id."""
        with self.app.app_context():
            sessions = self.app.extensions["evershop_customer"].admin_sessions
            value = sessions.open(ADMIN_EMAIL)
            return value, sessions.session_id(value)

    def seed(self, count: int, *, first: int, password_hash: str) -> list[database.Seeded]:
        from examples.app import customers, db

        with self.app.app_context():
            settings = self.app.extensions["evershop_customer"].settings
            return database.seed(
                db.engine,
                customers.models.Customer.__table__,
                customers.models.LoginSession.__table__,
                count=count,
                first=first,
                password_hash=password_hash,
                now=utcnow(),
                lifetime=settings.token_lifetime,
            )

    def close(self) -> None:
        from examples.app import db

        with self.app.app_context():
            db.session.remove()
            db.engine.dispose()


def open_shop(url: str, rows: int, hash_method: str) -> Shop:
    """Migrate ``url`` as the example app does, then bulk-insert ``rows`` customers."""
    from examples.app import create_app

    shop = Shop(url, create_app(app_config(url, hash_method)), [])
    cheap = generate_password_hash("not used", method=CHEAP_HASH_METHOD)
    shop.rows = shop.seed(rows, first=1, password_hash=cheap)
    return shop


def statement_counts(shop: Shop, login_email: str) -> dict[str, int]:
    """SQL statements per request of each measured endpoint (in this process)."""
    from examples.app import db

    app = shop.app
    statements: list[str] = []

    def listener(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    http = app.test_client(use_cookies=False)

    def count(method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        statements.clear()
        response = http.open(path, method=method, **kwargs)
        if response.status_code != 200:
            raise RuntimeError(f"{method} {path}: {response.status_code} {response.data[:200]!r}")
        return len(statements), response.get_json()

    def bearer(row: database.Seeded) -> dict[str, str]:
        return {"Authorization": f"Bearer {shop.token(row)}"}

    with app.app_context():
        engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", listener)
    try:
        counts: dict[str, int] = {}
        new = {"email": "counted@example.com", "password": PASSWORD, "full_name": "Counted"}
        counts["create"], _ = count("POST", "/api/customers", json=new)
        credentials = {"email": login_email, "password": PASSWORD}
        counts["login"], login = count("POST", "/api/customers/sessions", json=credentials)
        first, second = shop.rows[0], shop.rows[1]
        path = f"/api/customers/{first.uuid}"
        counts["token_check"], _ = count("PATCH", path, json={}, headers=bearer(first))
        counts["get_me"], _ = count("GET", "/api/customers/me", headers=bearer(first))
        cookie, _ = shop.admin_session()
        counts["admin_list"], _ = count(
            "GET", "/api/customers", headers={"Cookie": f"asid={cookie}"}
        )
        rename = {"full_name": "Renamed"}
        counts["patch"], _ = count("PATCH", path, json=rename, headers=bearer(first))
        counts["logout"], _ = count(
            "DELETE",
            f"/api/customers/sessions/{login['data']['sid']}",
            headers={"Authorization": f"Bearer {login['data']['token']}"},
        )
        path = f"/api/customers/{second.uuid}"
        counts["delete"], _ = count("DELETE", path, headers=bearer(second))
        third = shop.rows[2]
        [refresh_token] = shop.refresh_tokens([third])
        counts["refresh"], _ = count(
            "POST", "/api/customer/token/refresh", json={"refreshToken": refresh_token}
        )
        counts["trusted_token"] = trusted_statements(shop, third)
        counts["add_address"], _ = count(
            "POST", "/api/customers/me/addresses", json=ADDRESS, headers=bearer(third)
        )
        counts["list_addresses"], _ = count(
            "GET", "/api/customers/me/addresses", headers=bearer(third)
        )
        # Before the answer only (the token is issued once the response is closed, which
        # this client leaves undone): the same statements for any email.
        counts["reset_request"], _ = count(
            "POST", "/api/customers/reset-password", json={"email": third.email}
        )
        return counts
    finally:
        sa.event.remove(engine, "before_cursor_execute", listener)


def trusted_statements(shop: Shop, row: database.Seeded) -> int:
    """SQL statements of ``GET /whoami`` with an access token, on an app that trusts
    access tokens (in this process)."""
    from examples.app import create_app, db

    config = app_config(shop.url, DEFAULT_HASH_METHOD)
    trusting = create_app({**config, "EVERSHOP_CUSTOMER_CHECK_SESSION_EACH_REQUEST": False})
    statements: list[str] = []

    def listener(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    with trusting.app_context():
        engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", listener)
    try:
        headers = {"Authorization": f"Bearer {shop.access_token(row)}"}
        response = trusting.test_client().get("/whoami", headers=headers)
        if response.status_code != 200:
            raise RuntimeError(f"GET /whoami: {response.status_code} {response.data[:200]!r}")
        return len(statements)
    finally:
        sa.event.remove(engine, "before_cursor_execute", listener)
        with trusting.app_context():
            engine.dispose()


# -- the run ------------------------------------------------------------------------------


STARTED = time.monotonic()


def log(message: str) -> None:
    print(f"[{time.monotonic() - STARTED:6.1f} s] {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    options = parse_options(argv)
    hash_method = options.hash_method
    backend = options.database
    if backend == "auto":
        backend = "postgresql" if database.postgres_answers() else "sqlite"
    log(f"{backend}, {options.workers} gunicorn workers; preparing the databases ...")
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="efc-bench-")))
        report = run(options, backend, hash_method, workdir, stack)
    print(render(report))
    write(report, options.output)
    log(f"written to {options.output}")
    sides = [r[side] for r in report["results"] for side in ("library", "baseline")]
    failed = sum(side["errors"] for side in sides)
    if failed or not all(side["requests"] for side in sides):
        log(f"{failed} requests failed or a series got no answer in time: not valid figures")
        return 2
    missed = [r["name"] for r in report["results"] if r["met"] is False]
    if not report["token_check_scaling"]["met"]:
        missed.append("token_check_scaling")
    if not report["import_evershop"]["met"]:
        missed.append("import_evershop")
    if missed:
        log("targets missed: " + ", ".join(missed))
        if options.check:
            return 1
    return 0


def run(
    options: Options,
    backend: str,
    hash_method: str,
    workdir: Path,
    stack: contextlib.ExitStack,
) -> dict[str, Any]:
    """Everything between the empty databases and the report."""
    rng = random.Random(5)
    connections_per_server = options.workers * options.per_worker
    small = open_shop(
        stack.enter_context(database.fresh_database(backend, workdir, "small")),
        options.small_rows,
        hash_method,
    )
    stack.callback(small.close)
    large = open_shop(
        stack.enter_context(database.fresh_database(backend, workdir, "large")),
        options.large_rows,
        hash_method,
    )
    stack.callback(large.close)
    # Customers who log in: the real hash, one customer per connection.
    stored_hash = generate_password_hash(PASSWORD, method=hash_method)
    login_rows = large.seed(
        connections_per_server, first=options.large_rows + 1, password_hash=stored_hash
    )
    with large.app.app_context():
        from examples.app import db

        db_version = database.server_version(db.engine)
    log(f"{options.small_rows:,} and {options.large_rows:,} customers; starting gunicorn")

    def connect(srv: server.Server) -> list[client.Connection]:
        connections = client.open_balanced(
            srv.host, srv.port, workers=srv.workers, per_worker=options.per_worker
        )
        for connection in connections:
            stack.callback(connection.close)
        return connections

    def start(shop: Shop) -> contextlib.AbstractContextManager[server.Server]:
        env = server_env(shop.url, hash_method, stored_hash)
        return server.gunicorn(APP, workers=options.workers, env=env)

    comparisons: list[Comparison] = []
    main_server = stack.enter_context(start(large))

    # 1. The token check, PATCH {} with a bearer token, against the credential read, on
    #    the small and on the large database: lane k goes small library, large library,
    #    small bare, large bare, ... over worker k of each server.
    with start(small) as small_server:
        server.wait_until_ready(main_server)
        server.wait_until_ready(small_server)
        log("token check: small and large database")
        per_server = []
        for shop, srv in ((small, small_server), (large, main_server)):
            connections = connect(srv)
            n, where = len(connections), f"{srv.host}:{srv.port}"
            library: list[list[bytes]] = [[] for _ in range(n)]
            bare: list[list[bytes]] = [[] for _ in range(n)]
            for i, row in enumerate(rng.sample(shop.rows, min(1000, len(shop.rows)))):
                token = shop.token(row)
                path = f"/api/customers/{row.uuid}"
                library[i % n].append(
                    client.http_request("PATCH", path, host=where, body={}, token=token)
                )
                bare_path = f"/bare/token/{row.sid}"
                bare[i % n].append(
                    client.http_request("PATCH", bare_path, host=where, body={}, token=token)
                )
            size = len(shop.rows)
            comparison = Comparison(
                f"token_check_{size}",
                f"token check (PATCH {{}}), {size:,} customers",
                Series("library", cycling(library)),
                Series("bare", cycling(bare)),
                "token_check",
            )
            comparisons.append(comparison)
            per_server.append(connections)
        series = [comparisons[0].library, comparisons[1].library]
        series += [comparisons[0].baseline, comparisons[1].baseline]
        for one in series:
            one.workers = options.workers
        # Series s is served by server s % 2; lane i starts at series i.
        steps = [[(lane + j) % 4 for j in range(4)] for lane in range(n)]
        lanes = [[(per_server[s % 2][lane], s) for s in steps[lane]] for lane in range(n)]
        measure(lanes, series, seconds=2 * options.seconds, warmup=options.warmup)
        for connection in per_server[0]:
            connection.close()  # else its worker waits for them to stop gunicorn
    small_check, large_check = comparisons[0].library, comparisons[1].library
    cost = None
    if small_check.rate and large_check.rate:
        cost = round(small_check.rate / large_check.rate, 3)
    scaling = {
        "rows": [options.small_rows, options.large_rows],
        "cost_ratio": cost,
        "target": SCALING_TARGET,
        "met": cost is not None and cost <= SCALING_TARGET,
    }

    connections = per_server[1]  # the large database's server serves the rest
    n, where = len(connections), f"{main_server.host}:{main_server.port}"

    def compare(
        name: str,
        label: str,
        library: client.RequestFactory,
        bare: client.RequestFactory,
        seconds: float,
    ) -> None:
        log(label)
        comparison = Comparison(name, label, Series("library", library), Series("bare", bare), name)
        series = [comparison.library, comparison.baseline]
        for one in series:
            one.workers = options.workers
        lanes = client.alternating(connections, 2)
        measure(lanes, series, seconds=seconds, warmup=options.warmup)
        comparisons.append(comparison)

    # 2. PATCH renames (so each request writes). Connection i owns customers i, i+n, ...:
    #    no two requests race for one row.
    patch_rows = large.rows[: min(1000, len(large.rows) // 10)]
    renames = itertools.count()

    def renaming(bare: bool) -> client.RequestFactory:
        owned = [itertools.cycle(patch_rows[i::n]) for i in range(n)]

        def make(index: int) -> bytes:
            row = next(owned[index])
            path = f"/bare/customers/{row.sid}" if bare else f"/api/customers/{row.uuid}"
            body = {"full_name": f"Renamed {next(renames)}"}
            return client.http_request("PATCH", path, host=where, body=body, token=large.token(row))

        return make

    compare("patch", "PATCH (rename)", renaming(False), renaming(True), options.seconds)

    def get_each(
        path: Callable[[database.Seeded], str], token: Callable[[database.Seeded], str]
    ) -> client.RequestFactory:
        """A GET for each of the same customers, connection i cycling through its own."""
        requests: list[list[bytes]] = [[] for _ in range(n)]
        for i, row in enumerate(patch_rows):
            request = client.http_request("GET", path(row), host=where, token=token(row))
            requests[i % n].append(request)
        return cycling(requests)

    # GET /customers/me, one's own profile, over the same customers.
    compare(
        "get_me",
        "GET /customers/me",
        get_each(lambda _row: "/api/customers/me", large.token),
        get_each(lambda row: f"/bare/me/{row.sid}", large.token),
        options.seconds,
    )

    # A host route that needs only who is calling, on the app that trusts access tokens
    # (``/trusting``), against verifying the JWT alone.
    compare(
        "trusted_token",
        "GET /whoami, access token trusted (no session check)",
        get_each(lambda _row: "/trusting/whoami", large.access_token),
        get_each(lambda _row: "/bare/jwt", large.access_token),
        options.seconds,
    )

    # Addresses: connection i adds to its own customers' (no two requests lock one
    # customer at once), then lists them.
    def adding(bare: bool) -> client.RequestFactory:
        owned = [itertools.cycle(patch_rows[i::n]) for i in range(n)]

        def make(index: int) -> bytes:
            row = next(owned[index])
            path = f"/bare/addresses/{row.sid}" if bare else "/api/customers/me/addresses"
            return client.http_request(
                "POST", path, host=where, body=ADDRESS, token=large.token(row)
            )

        return make

    compare(
        "add_address", "POST /customers/me/addresses", adding(False), adding(True), options.seconds
    )

    compare(
        "list_addresses",
        "GET /customers/me/addresses",
        get_each(lambda _row: "/api/customers/me/addresses", large.token),
        get_each(lambda row: f"/bare/addresses/{row.sid}", large.token),
        options.seconds,
    )

    # GET /customers, the admin list's first page (the newest 20) and its total.
    cookie, admin_sid = large.admin_session()
    listing = client.http_request("GET", "/api/customers", host=where, cookie=f"asid={cookie}")
    bare_listing = client.http_request("GET", f"/bare/customers?asid={admin_sid}", host=where)
    compare(
        "admin_list",
        "GET /customers (first page)",
        cycling([[listing] for _ in range(n)]),
        cycling([[bare_listing] for _ in range(n)]),
        options.seconds,
    )

    # 3., 4. and 5. Logout, DELETE and refresh use a row up per request, and so do reset
    # requests (8.): seven disjoint pools, ready.
    rest = large.rows[len(patch_rows) :]
    size = len(rest) // 7
    pools = [rest[i * size : (i + 1) * size] for i in range(7)]

    def prepared(
        rows: list[database.Seeded], method: str, path: Callable[[database.Seeded], str]
    ) -> client.RequestFactory:
        return consuming(
            [client.http_request(method, path(r), host=where, token=large.token(r)) for r in rows]
        )

    compare(
        "logout",
        "logout (DELETE /sessions/{sid})",
        prepared(pools[0], "DELETE", lambda r: f"/api/customers/sessions/{r.sid}"),
        prepared(pools[1], "DELETE", lambda r: f"/bare/sessions/{r.sid}"),
        options.seconds,
    )
    compare(
        "delete",
        "DELETE /customers/{id}",
        prepared(pools[2], "DELETE", lambda r: f"/api/customers/{r.uuid}"),
        prepared(pools[3], "DELETE", lambda r: f"/bare/customers/{r.sid}"),
        options.seconds,
    )

    def refreshing(rows: list[database.Seeded], path: str) -> client.RequestFactory:
        tokens = large.refresh_tokens(rows)
        return consuming(
            [
                client.http_request("POST", path, host=where, body={"refreshToken": t})
                for t in tokens
            ]
        )

    compare(
        "refresh",
        "POST /customer/token/refresh (rotation)",
        refreshing(pools[4], "/api/customer/token/refresh"),
        refreshing(pools[5], "/bare/refresh"),
        options.seconds,
    )

    # 6. Login: connection i logs in as its own customer; the floor checks one hash.
    def credentials(path: str) -> client.RequestFactory:
        return cycling(
            [
                [
                    client.http_request(
                        "POST", path, host=where, body={"email": r.email, "password": PASSWORD}
                    )
                ]
                for r in login_rows
            ]
        )

    compare(
        "login",
        f"login ({hash_method})",
        credentials("/api/customers/sessions"),
        credentials("/bare/hash/check"),
        options.hash_seconds,
    )

    # 7. Create: a new email every time; the floor makes one hash.
    def registering(path: str, prefix: str) -> client.RequestFactory:
        def build(i: int) -> bytes:
            body = {
                "email": f"{prefix}{i}@example.com",
                "password": PASSWORD,
                "full_name": f"New {i}",
            }
            return client.http_request("POST", path, host=where, body=body)

        return numbered(build)

    compare(
        "create",
        f"create ({hash_method})",
        registering("/api/customers", "new"),
        registering("/bare/hash/generate", "bare"),
        options.hash_seconds,
    )

    # 8. Reset requests, each for another email: one with an account (its token is
    #    issued after the answer) against one without, side by side.
    def resetting(emails: Iterator[str]) -> client.RequestFactory:
        def make(_index: int) -> bytes | None:
            email = next(emails, None)
            if email is None:
                return None
            return client.http_request(
                "POST", "/api/customers/reset-password", host=where, body={"email": email}
            )

        return make

    compare(
        "reset_request",
        "POST /customers/reset-password, email with an account vs without",
        resetting(row.email for row in pools[6]),
        resetting(f"nobody{i}@example.com" for i in itertools.count()),
        options.seconds,
    )

    statements = statement_counts(large, login_rows[0].email)
    log(f"import-evershop: {options.large_rows:,} customers")
    import_result = import_benchmark(options, backend, hash_method, workdir, stack)
    return {
        "machine": machine.describe(REPO, db_version),
        "settings": {
            "quick": options.quick,
            "server": f"gunicorn {server.WORKER_CLASS}, {options.workers} workers x 1 thread",
            "connections": connections_per_server,
            "seconds": options.seconds,
            "hash_seconds": options.hash_seconds,
            "password_hash_method": hash_method,
            "rows": {"small": options.small_rows, "large": options.large_rows},
        },
        "results": [c.row(statements) for c in comparisons],
        "token_check_scaling": scaling,
        "import_evershop": import_result,
    }


def import_benchmark(
    options: Options,
    backend: str,
    hash_method: str,
    workdir: Path,
    stack: contextlib.ExitStack,
) -> dict[str, Any]:
    """Time ``flask customers import-evershop`` of a shop of ``large_rows`` customers
    into a freshly migrated database."""
    from examples.app import create_app

    source = stack.enter_context(database.fresh_database(backend, workdir, "evershop"))
    importing.build_source(source, options.large_rows)
    target = stack.enter_context(database.fresh_database(backend, workdir, "imported"))
    app = create_app(app_config(target, hash_method))
    try:
        return importing.measure(app, source, options.large_rows, workdir)
    finally:
        from examples.app import db

        with app.app_context():
            db.engine.dispose()


# -- output -------------------------------------------------------------------------------


def render(report: dict[str, Any]) -> str:
    """The results as a Markdown table, with the machine and the settings."""
    m, s = report["machine"], report["settings"]
    load = ", ".join(map(str, m["load_average_at_start"]))
    lines = [
        f"{m['cpu']}, {m['cores']} cores, {m['os']}; {m['python']}; {m['database']};"
        f" {m['date']}; load average at start {load}",
        f"{s['server']}; {s['connections']} keep-alive connections, one request in flight on"
        f" each, library and bare requests alternating on every connection; {s['seconds']} s"
        f" per comparison ({s['hash_seconds']} s for login and create)"
        + ("; QUICK MODE: indicative only" if s["quick"] else ""),
        *(
            []
            if s["password_hash_method"] == DEFAULT_HASH_METHOD
            else ["NOT the default hash method: the login and create ratios mean nothing"]
        ),
        "",
        "| endpoint | library req/s | bare req/s | ratio | target | library p50 / p99 ms"
        " | bare p50 / p99 ms | SQL statements | the bare endpoint does |",
        "|---|--:|--:|--:|--:|--:|--:|--:|---|",
    ]
    for row in report["results"]:
        lib, bare = row["library"], row["baseline"]
        target = "" if row["target"] is None else f"≥ {row['target']:.2f}"
        if row["name"] in SYMMETRIC and row["target"] is not None:
            target = f"p50s {row['target']:.2f}–{1 / row['target']:.2f}"
        verdict = {True: " ✓", False: " ✗", None: ""}[row["met"]]
        lines.append(
            f"| {row['label']} | {lib['requests_per_second']:,.1f} |"
            f" {bare['requests_per_second']:,.1f} |"
            f" {'no data' if row['ratio'] is None else format(row['ratio'], '.3f')}{verdict} |"
            f" {target} |"
            f" {lib['p50_ms']} / {lib['p99_ms']} | {bare['p50_ms']} / {bare['p99_ms']} |"
            f" {row['statements'] if row['statements'] is not None else ''} |"
            f" {row['baseline_does']} |"
        )
    scaling = report["token_check_scaling"]
    small_rows, large_rows = scaling["rows"]
    imported = report["import_evershop"]
    lines += [
        "",
        f"Token check cost per request with {large_rows:,} customers and sessions over"
        f" {small_rows:,}: {scaling['cost_ratio']} (target ≤ {scaling['target']:.2f})"
        + (" ✓" if scaling["met"] else " ✗"),
        f"flask customers import-evershop, {imported['customers']:,} customers (a fifth with"
        f" an address): {imported['seconds']} s, {imported['customers_per_second']:,}"
        f" customers/s (target < {imported['target_seconds']:.0f} s)"
        + (" ✓" if imported["met"] else " ✗"),
    ]
    for row in report["results"]:
        for side in ("library", "baseline"):
            if row[side]["errors"]:
                lines.append(
                    f"{row['label']} ({side}): {row[side]['errors']} failed requests, first:"
                    f" {row[side].get('first_error', '')}"
                )
            if row[side].get("ran_out_of_rows"):
                lines.append(f"{row['label']} ({side}): ran out of prepared rows early")
    return "\n".join(lines)


def write(report: dict[str, Any], path: Path) -> None:
    """Write the results as JSON, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", "utf-8")
    os.replace(temporary, path)
