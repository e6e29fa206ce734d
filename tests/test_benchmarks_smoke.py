"""The benchmark harness works end to end (``make bench``), in a few seconds.

A tiny run on SQLite with a cheap hash: both gunicorn servers start and stop, every
series gets answers and no request fails, and the results file has every row. It
checks the machinery only: no figure in it is looked at (timings are for the
benchmark's own output, never for a test).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
EXPECTED = [
    "token_check_20",
    "token_check_1000",
    "patch",
    "get_me",
    "trusted_token",
    "add_address",
    "list_addresses",
    "admin_list",
    "logout",
    "delete",
    "refresh",
    "login",
    "create",
    "reset_request",
]


@pytest.mark.skipif(sys.platform == "win32", reason="gunicorn needs a POSIX system")
def test_a_tiny_benchmark_run(tmp_path: Path) -> None:
    output = tmp_path / "results.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLASK_", "EVERSHOP_"))}
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks",
            "--quick",
            "--database=sqlite",
            "--workers=1",
            "--small-rows=20",
            "--large-rows=1000",
            "--seconds=0.3",
            "--hash-seconds=0.3",
            "--warmup=0.1",
            "--hash-method=pbkdf2:sha256:1",
            f"--output={output}",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,  # a hang guard, not a timing check
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    report = json.loads(output.read_text("utf-8"))
    assert [row["name"] for row in report["results"]] == EXPECTED
    for row in report["results"]:
        for side in ("library", "baseline"):
            assert row[side]["requests"] > 0, row
            assert row[side]["errors"] == 0, row
        assert row["statements"] is not None, row
    assert report["machine"]["database"].startswith("SQLite")
    assert report["settings"]["password_hash_method"] == "pbkdf2:sha256:1"
    assert report["token_check_scaling"]["rows"] == [20, 1000]
    imported = report["import_evershop"]
    assert imported["customers"] == 1000
    assert imported["output"].startswith("Imported 1000 customers and 200 addresses")
    assert "| PATCH (rename) |" in completed.stdout
