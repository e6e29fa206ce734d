"""The benchmark run: databases, servers, scenarios, the table and the results file.

Every figure is a ratio against a bare baseline measured side by side: the library's
series and its baseline's run in alternating rounds (A B B A ...) on the same gunicorn
workers and the same keep-alive connections, so a noisy neighbour slows both alike.
Throughput is taken between the first and last response of each round (steady state,
no rounding to whole requests); latencies are those of every response, measured under
that same load.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import random
import secrets
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from werkzeug.security import generate_password_hash

from flask_evershop_customer.service import utcnow

from . import client, database, machine, server

REPO = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
PASSWORD = "correct horse battery staple"
#: A cheap hash for the rows the non-hash endpoints use: they never check it.
CHEAP_HASH_METHOD = "pbkdf2:sha256:1"
SECRET_KEY = "bench-" + secrets.token_hex(24)
ADMIN_EMAIL = "admin@example.com"


# -- options ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    database: str
    workers: int
    per_worker: int
    small_rows: int
    large_rows: int
    rounds: int
    seconds: float
    hash_seconds: float
    warmup: float
    output: Path
    quick: bool
    check: bool


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
        help="auto: PostgreSQL on 127.0.0.1:5432 when it answers, else SQLite",
    )
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument(
        "--per-worker", type=int, default=2, help="keep-alive connections per worker"
    )
    parser.add_argument("--small-rows", type=int, help="customers for the small token check")
    parser.add_argument("--large-rows", type=int, help="customers for everything else")
    parser.add_argument("--rounds", type=int, help="alternating rounds per comparison")
    parser.add_argument("--seconds", type=float, help="seconds per round (non-hash endpoints)")
    parser.add_argument("--hash-seconds", type=float, help="seconds per round (login, create)")
    parser.add_argument("--warmup", type=float, help="warm-up seconds per series")
    parser.add_argument("--output", type=Path, help="results file (JSON)")
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
        rounds=pick(args.rounds, 4, 1),
        seconds=pick(args.seconds, 2.0, 0.5),
        hash_seconds=pick(args.hash_seconds, 4.0, 2.0),
        warmup=pick(args.warmup, 0.5, 0.2),
        output=pick(args.output, RESULTS / "latest.json", RESULTS / "quick.json"),
        quick=quick,
        check=args.check,
    )
    if options.large_rows < options.small_rows or options.small_rows < 10:
        parser.error("need 10 <= --small-rows <= --large-rows")
    return options


# -- measuring ----------------------------------------------------------------------------


@dataclass
class Series:
    """One side of a comparison: requests, the connections they go over, and results."""

    name: str
    connections: list[client.Connection]
    make_request: client.RequestFactory
    max_requests: int
    latencies: list[float] = field(default_factory=list)
    counted: int = 0
    span: float = 0.0
    errors: int = 0
    first_error: str = ""
    exhausted: bool = False

    def record(self, phase: client.PhaseResult) -> None:
        self.latencies.extend(phase.latencies)
        if len(phase.completions) >= 2:
            self.counted += len(phase.completions) - 1
            self.span += phase.completions[-1] - phase.completions[0]
        self.errors += phase.errors
        self.first_error = self.first_error or phase.first_error
        self.exhausted = self.exhausted or phase.exhausted

    @property
    def rate(self) -> float:
        """Requests per second in steady state."""
        return self.counted / self.span if self.span > 0 else 0.0

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
            **({"pool_exhausted": True} if self.exhausted else {}),
        }


def measure(series: list[Series], *, rounds: int, seconds: float, warmup: float) -> None:
    """Warm every series up, then run them in alternating rounds (A B, B A, ...)."""
    for one in series:
        client.run_phase(
            one.connections, one.make_request, duration=warmup, max_requests=one.max_requests
        )
    for number in range(rounds):
        order = series if number % 2 == 0 else list(reversed(series))
        for one in order:
            phase = client.run_phase(
                one.connections, one.make_request, duration=seconds, max_requests=one.max_requests
            )
            one.record(phase)


def cycling(requests: list[list[bytes]]) -> client.RequestFactory:
    """Connection ``i`` cycles through ``requests[i]`` forever."""
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


# -- the app in this process (migrations, tokens, statement counts) -----------------------


def app_config(url: str) -> dict[str, Any]:
    return {
        "SQLALCHEMY_DATABASE_URI": url,
        "SECRET_KEY": SECRET_KEY,
        "EXAMPLE_ADMIN_EMAIL": ADMIN_EMAIL,
        "EXAMPLE_ADMIN_PASSWORD": "bench-admin-password",
    }


def server_env(url: str, hash_method: str, stored_hash: str) -> dict[str, str]:
    """The environment of a gunicorn: the caller's, minus its Flask and bench settings."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("FLASK_", "EVERSHOP_"))
    }
    env.update(
        FLASK_SQLALCHEMY_DATABASE_URI=url,
        FLASK_SECRET_KEY=SECRET_KEY,
        FLASK_EXAMPLE_ADMIN_EMAIL=ADMIN_EMAIL,
        FLASK_EXAMPLE_ADMIN_PASSWORD="bench-admin-password",
        FLASK_EXAMPLE_AUTO_UPGRADE="false",
        EVERSHOP_BENCH_HASH_METHOD=hash_method,
        EVERSHOP_BENCH_STORED_HASH=stored_hash,
        PYTHONDONTWRITEBYTECODE="1",
    )
    return env


@dataclass
class Shop:
    """One migrated database, seeded, with the in-process app that signs its tokens."""

    url: str
    app: Any
    rows: list[database.Seeded]
    tokens: dict[str, str]

    def token(self, row: database.Seeded) -> str:
        if row.sid not in self.tokens:
            with self.app.app_context():
                state = self.app.extensions["evershop_customer"]
                self.tokens[row.sid] = state.service.tokens.issue(row.uuid, row.sid, utcnow())
        return self.tokens[row.sid]


def open_shop(url: str, rows: int) -> Shop:
    """Migrate ``url`` the way the example app does, then bulk-insert ``rows`` customers."""
    from examples.app import create_app, customers, db

    app = create_app(app_config(url))
    with app.app_context():
        models = customers.models
        lifetime = app.extensions["evershop_customer"].settings.token_lifetime
        seeded = database.seed(
            db.engine,
            models.Customer.__table__,  # type: ignore[attr-defined]
            models.Session.__table__,  # type: ignore[attr-defined]
            count=rows,
            first=1,
            password_hash=generate_password_hash("not used", method=CHEAP_HASH_METHOD),
            now=utcnow(),
            lifetime=lifetime,
        )
    return Shop(url, app, seeded, {})


def close_shop(shop: Shop) -> None:
    from examples.app import db

    with shop.app.app_context():
        db.session.remove()
        db.engine.dispose()


def statement_counts(shop: Shop, login_email: str) -> dict[str, int]:
    """SQL statements per request of each measured endpoint, in this process."""
    from examples.app import db

    app = shop.app
    counted: list[str] = []

    def listener(*args: Any) -> None:
        counted.append(args[2])

    http = app.test_client(use_cookies=False)

    def count(method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        counted.clear()
        response = http.open(path, method=method, **kwargs)
        if response.status_code != 200:
            raise RuntimeError(f"{method} {path}: {response.status_code} {response.data[:200]!r}")
        return len(counted), response.get_json()

    with app.app_context():
        engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", listener)
    try:
        result: dict[str, int] = {}
        body = {"email": "counted@example.com", "password": PASSWORD, "full_name": "Counted"}
        result["create"], _ = count("POST", "/api/customers", json=body)
        result["login"], login = count(
            "POST", "/api/customers/sessions", json={"email": login_email, "password": PASSWORD}
        )
        auth = {"Authorization": f"Bearer {login['data']['token']}"}
        row = shop.rows[0]
        own = {"Authorization": f"Bearer {shop.token(row)}"}
        path = f"/api/customers/{row.uuid}"
        result["token_check"], _ = count("PATCH", path, json={}, headers=own)
        result["patch"], _ = count(
            "PATCH", f"/api/customers/{row.uuid}", json={"full_name": "Renamed"}, headers=own
        )
        result["logout"], _ = count(
            "DELETE", f"/api/customers/sessions/{login['data']['sid']}", headers=auth
        )
        second = shop.rows[1]
        result["delete"], _ = count(
            "DELETE",
            f"/api/customers/{second.uuid}",
            headers={"Authorization": f"Bearer {shop.token(second)}"},
        )
        return result
    finally:
        sa.event.remove(engine, "before_cursor_execute", listener)


# -- the run ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    name: str
    label: str
    library: Series
    baseline: Series
    target: float | None
    #: Which statement count applies (several token-check rows share one).
    kind: str = ""

    def row(self, statements: int | None) -> dict[str, Any]:
        ratio = self.library.rate / self.baseline.rate if self.baseline.rate else 0.0
        return {
            "name": self.name,
            "label": self.label,
            "library": self.library.summary(),
            "baseline": self.baseline.summary(),
            "ratio": round(ratio, 3),
            "target": self.target,
            "met": None if self.target is None else ratio >= self.target,
            "statements": statements,
            "baseline_does": BASELINES[self.kind or self.name],
        }


BASELINES = {
    "token_check": "one primary-key read",
    "patch": "one primary-key read, one write",
    "logout": "one primary-key read, one write",
    "delete": "one primary-key read, two writes",
    "login": "check_password_hash only",
    "create": "generate_password_hash only",
}


def render(report: dict[str, Any]) -> str:
    """The results as a Markdown table, with the machine and the settings."""
    m, s = report["machine"], report["settings"]
    lines = [
        f"{m['cpu']}, {m['cores']} cores; {m['python']}; {m['database']}; {m['date']}"
        f" (load average at start {', '.join(map(str, m['load_average_at_start']))})",
        f"{s['server']}; {s['connections']} keep-alive connections; {s['rounds']} alternating"
        f" rounds of {s['seconds_per_round']} s ({s['hash_seconds_per_round']} s for hashing"
        " endpoints)" + ("; QUICK MODE, indicative only" if s["quick"] else ""),
        "",
        "| endpoint | library req/s | bare req/s | ratio | target | library p50 / p99 ms"
        " | bare p50 / p99 ms | SQL per request | bare endpoint does |",
        "|---|--:|--:|--:|--:|--:|--:|--:|---|",
    ]
    for row in report["results"]:
        lib, bare = row["library"], row["baseline"]
        target = "" if row["target"] is None else f"≥ {row['target']:.2f}"
        verdict = {True: " ✓", False: " ✗ MISSED", None: ""}[row["met"]]
        lines.append(
            f"| {row['label']} | {lib['requests_per_second']:,.1f} |"
            f" {bare['requests_per_second']:,.1f} | {row['ratio']:.3f}{verdict} | {target} |"
            f" {lib['p50_ms']} / {lib['p99_ms']} | {bare['p50_ms']} / {bare['p99_ms']} |"
            f" {row['statements'] if row['statements'] is not None else ''} |"
            f" {row['baseline_does']} |"
        )
    scaling = report["token_check_scaling"]
    small_rows, large_rows = scaling["rows"]
    lines += [
        "",
        f"Token check, per-request cost with {large_rows:,} customers and sessions relative"
        f" to {small_rows:,}: {scaling['cost_ratio']:.3f}"
        f" (target ≤ {scaling['target']:.2f}){' ✓' if scaling['met'] else ' ✗ MISSED'}",
    ]
    for row in report["results"]:
        for side in ("library", "baseline"):
            if row[side]["errors"]:
                lines.append(
                    f"{row['label']} ({side}): {row[side]['errors']} failed requests, first:"
                    f" {row[side].get('first_error', '')}"
                )
            if row[side].get("pool_exhausted"):
                lines.append(f"{row['label']} ({side}): ran out of prepared rows before time")
    return "\n".join(lines)


def write(report: dict[str, Any], path: Path) -> None:
    """Write the results as JSON, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", "utf-8")
    os.replace(temporary, path)


def main(argv: list[str] | None = None) -> int:
    options = parse_options(argv)
    from flask_evershop_customer.config import DEFAULTS

    hash_method = DEFAULTS["EVERSHOP_CUSTOMER_PASSWORD_HASH_METHOD"]
    backend = options.database
    if backend == "auto":
        backend = "postgresql" if database.postgres_answers() else "sqlite"
    log(f"database: {backend}; {options.workers} workers; preparing ...")
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="efc-bench-")))
        return run(options, backend, hash_method, workdir, stack)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run(
    options: Options,
    backend: str,
    hash_method: str,
    workdir: Path,
    stack: contextlib.ExitStack,
) -> int:
    from examples.app import customers, db

    rng = random.Random(5)
    connections_per_server = options.workers * options.per_worker
    small_url = stack.enter_context(database.fresh_database(backend, workdir, "small"))
    large_url = stack.enter_context(database.fresh_database(backend, workdir, "large"))
    small = open_shop(small_url, options.small_rows)
    stack.callback(close_shop, small)
    large = open_shop(large_url, options.large_rows)
    stack.callback(close_shop, large)

    # Customers that log in: the real hash, one customer per connection.
    stored_hash = generate_password_hash(PASSWORD, method=hash_method)
    with large.app.app_context():
        login_rows = database.seed(
            db.engine,
            customers.models.Customer.__table__,  # type: ignore[attr-defined]
            customers.models.Session.__table__,  # type: ignore[attr-defined]
            count=connections_per_server,
            first=options.large_rows + 1,
            password_hash=stored_hash,
            now=utcnow(),
            lifetime=3600,
        )
        db_version = database.server_version(db.engine)
    log(f"seeded {options.small_rows:,} and {options.large_rows:,} customers; starting gunicorn")

    env_small = server_env(small_url, hash_method, stored_hash)
    env_large = server_env(large_url, hash_method, stored_hash)
    main_server = stack.enter_context(
        server.gunicorn("benchmarks.wsgi:application", workers=options.workers, env=env_large)
    )
    comparisons: list[Comparison] = []
    scaling: dict[str, Any] = {}

    def connect(srv: server.Server) -> list[client.Connection]:
        connections = client.open_balanced(
            srv.host, srv.port, workers=srv.workers, per_worker=options.per_worker
        )
        for connection in connections:
            stack.callback(connection.close)
        return connections

    def host(srv: server.Server) -> str:
        return f"{srv.host}:{srv.port}"

    fast = {"rounds": options.rounds, "seconds": options.seconds, "warmup": options.warmup}

    # 1. The token check (PATCH {} with a bearer token): 1,000 rows and 100,000 rows,
    #    each against one primary-key read, all four series alternating.
    with server.gunicorn(
        "benchmarks.wsgi:application", workers=options.workers, env=env_small
    ) as small_server:
        log("token check: small and large database, library and bare")
        token_series = []
        for shop, srv in ((small, small_server), (large, main_server)):
            connections = connect(srv)
            sample = rng.sample(shop.rows, min(1000, len(shop.rows)))
            per_connection: list[list[bytes]] = [[] for _ in connections]
            bare_per_connection: list[list[bytes]] = [[] for _ in connections]
            for i, row in enumerate(sample):
                token = shop.token(row)
                per_connection[i % len(connections)].append(
                    client.http_request(
                        "PATCH", f"/api/customers/{row.uuid}", host=host(srv), body={}, token=token
                    )
                )
                bare_per_connection[i % len(connections)].append(
                    client.http_request(
                        "PATCH", f"/bare/token/{row.sid}", host=host(srv), body={}, token=token
                    )
                )
            size = len(shop.rows)
            token_series.append(
                (
                    size,
                    Series(f"token check {size}", connections, cycling(per_connection), 10**9),
                    Series(f"bare {size}", connections, cycling(bare_per_connection), 10**9),
                )
            )
        measure([s for _, lib, bare in token_series for s in (lib, bare)], **fast)
        for size, lib, bare in token_series:
            comparisons.append(
                Comparison(
                    f"token_check_{size}",
                    f"token check, {size:,} customers",
                    lib,
                    bare,
                    None,
                    kind="token_check",
                )
            )
        (small_size, small_lib, _), (large_size, large_lib, _) = token_series
        cost = small_lib.rate / large_lib.rate if large_lib.rate else float("inf")
        scaling = {
            "rows": [small_size, large_size],
            "cost_ratio": round(cost, 3),
            "target": 1.2,
            "met": cost <= 1.2,
        }

    connections = connect(main_server)
    n = len(connections)
    h = host(main_server)

    # 2. PATCH: rename, so that each request writes. Connection i owns customers i, i+n, ...
    log("PATCH")
    patch_rows = large.rows[: min(1000, len(large.rows) // 10)]
    rename = itertools.count()

    def patch_factory(bare: bool) -> client.RequestFactory:
        owned = [patch_rows[i::n] for i in range(n)]
        cursors = [itertools.cycle(rows) for rows in owned]

        def make(index: int) -> bytes:
            row = next(cursors[index])
            body = {"full_name": f"Renamed {next(rename)}"}
            path = f"/bare/customers/{row.customer_id}" if bare else f"/api/customers/{row.uuid}"
            return client.http_request("PATCH", path, host=h, body=body, token=large.token(row))

        return make

    for row in patch_rows:
        large.token(row)
    patch = Comparison(
        "patch",
        "PATCH (rename)",
        Series("patch", connections, patch_factory(False), 10**9),
        Series("bare patch", connections, patch_factory(True), 10**9),
        0.8,
    )
    measure([patch.library, patch.baseline], **fast)
    comparisons.append(patch)

    # 3. and 4. Logout and DELETE use a row up per request: four disjoint pools.
    rest = large.rows[len(patch_rows) :]
    pool = len(rest) // 4
    pools = [rest[i * pool : (i + 1) * pool] for i in range(4)]
    log(f"logout and DELETE ({pool:,} rows per pool); tokens ...")

    def prepared(rows: list[database.Seeded], build: Callable[[database.Seeded], bytes]) -> list:
        return [build(row) for row in rows]

    logout = Comparison(
        "logout",
        "logout (DELETE /sessions/{sid})",
        Series(
            "logout",
            connections,
            consuming(
                prepared(
                    pools[0],
                    lambda r: client.http_request(
                        "DELETE",
                        f"/api/customers/sessions/{r.sid}",
                        host=h,
                        token=large.token(r),
                    ),
                )
            ),
            pool,
        ),
        Series(
            "bare logout",
            connections,
            consuming(
                prepared(
                    pools[1],
                    lambda r: client.http_request(
                        "DELETE", f"/bare/sessions/{r.sid}", host=h, token=large.token(r)
                    ),
                )
            ),
            pool,
        ),
        0.8,
    )
    log("logout")
    measure([logout.library, logout.baseline], **fast)
    comparisons.append(logout)

    delete = Comparison(
        "delete",
        "DELETE /customers/{id}",
        Series(
            "delete",
            connections,
            consuming(
                prepared(
                    pools[2],
                    lambda r: client.http_request(
                        "DELETE", f"/api/customers/{r.uuid}", host=h, token=large.token(r)
                    ),
                )
            ),
            pool,
        ),
        Series(
            "bare delete",
            connections,
            consuming(
                prepared(
                    pools[3],
                    lambda r: client.http_request(
                        "DELETE", f"/bare/customers/{r.customer_id}", host=h, token=large.token(r)
                    ),
                )
            ),
            pool,
        ),
        0.8,
    )
    log("DELETE")
    measure([delete.library, delete.baseline], **fast)
    comparisons.append(delete)

    # 5. Login: connection i logs in as its own customer; the floor checks one hash.
    log(f"login ({hash_method})")
    hashed = {
        "rounds": options.rounds,
        "seconds": options.hash_seconds,
        "warmup": options.warmup,
    }
    login_bodies = [{"email": row.email, "password": PASSWORD} for row in login_rows]
    login = Comparison(
        "login",
        f"login ({hash_method})",
        Series(
            "login",
            connections,
            cycling(
                [
                    [client.http_request("POST", "/api/customers/sessions", host=h, body=b)]
                    for b in login_bodies
                ]
            ),
            10**9,
        ),
        Series(
            "bare check_password_hash",
            connections,
            cycling(
                [
                    [client.http_request("POST", "/bare/hash/check", host=h, body=b)]
                    for b in login_bodies
                ]
            ),
            10**9,
        ),
        0.95,
    )
    measure([login.library, login.baseline], **hashed)
    comparisons.append(login)

    # 6. Create: a new email every time; the floor makes one hash.
    log(f"create ({hash_method})")

    def new_customer(path: str, prefix: str) -> client.RequestFactory:
        return numbered(
            lambda i: client.http_request(
                "POST",
                path,
                host=h,
                body={
                    "email": f"{prefix}{i}@example.com",
                    "password": PASSWORD,
                    "full_name": f"New Customer {i}",
                },
            )
        )

    create = Comparison(
        "create",
        f"create ({hash_method})",
        Series("create", connections, new_customer("/api/customers", "new"), 10**9),
        Series(
            "bare generate_password_hash",
            connections,
            new_customer("/bare/hash/generate", "bare"),
            10**9,
        ),
        0.95,
    )
    measure([create.library, create.baseline], **hashed)
    comparisons.append(create)

    statements = statement_counts(large, login_email=login_rows[0].email)
    report = {
        "machine": machine.describe(REPO, db_version),
        "settings": {
            "quick": options.quick,
            "server": f"gunicorn {server.WORKER_CLASS}, {options.workers} workers x 1 thread",
            "connections": connections_per_server,
            "rounds": options.rounds,
            "seconds_per_round": options.seconds,
            "hash_seconds_per_round": options.hash_seconds,
            "password_hash_method": hash_method,
            "rows": {"small": options.small_rows, "large": options.large_rows},
        },
        "results": [c.row(statements.get(c.kind or c.name)) for c in comparisons],
        "token_check_scaling": scaling,
    }
    errors = sum(c.library.errors + c.baseline.errors for c in comparisons)
    print(render(report))
    write(report, options.output)
    log(f"written to {options.output}")
    missed = [r["name"] for r in report["results"] if r["met"] is False]
    if not scaling["met"]:
        missed.append("token_check_scaling")
    if errors:
        log(f"{errors} requests failed: the figures are not valid")
        return 2
    if missed and options.check:
        log("targets missed: " + ", ".join(missed))
        return 1
    return 0
