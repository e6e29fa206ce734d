"""The HTTP API chapter's schemathesis runs, as written there (the admin cookie from the
CLI included), against the example app served by ``make run``: they pass against a correct
deployment."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

from . import docs_blocks
from .conftest import PASSWORD
from .live_server import LiveServer, make_run


def post(live: LiveServer, path: str, body: dict[str, str]) -> dict[str, str]:
    request = urllib.request.Request(
        live.url + path, json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request) as answer:
        data: dict[str, str] = json.load(answer)["data"]
        return data


def test_the_documented_schemathesis_runs_pass(tmp_path: Path) -> None:
    commands = docs_blocks.commands(docs_blocks.block("schemathesis-runs").text)
    assert [command.split()[0] for command in commands] == [
        "ASID=$(.venv/bin/flask",
        ".venv/bin/st",
        ".venv/bin/st",
    ]
    with make_run(tmp_path, EVERSHOP_CUSTOMER_REGISTRATIONS_PER_IP="0") as live:
        # The reader runs these from the checkout, whose .venv is this environment.
        (live.folder / ".venv").symlink_to(sys.prefix)
        body = {"email": "st@example.com", "password": PASSWORD, "full_name": "St"}
        post(live, "/api/customers", body)
        token = post(live, "/api/customers/sessions", body)["token"]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FLASK_", "EVERSHOP_"))}
        script = ["set -euo pipefail"] + [
            command.replace(docs_blocks.DOCS_BASE, live.url) for command in commands
        ]
        result = subprocess.run(
            ["bash", "-c", "\n".join(script)],
            cwd=live.folder,  # st keeps a cache in the working directory
            env={**env, "TOKEN": token},
            capture_output=True,
            text=True,
            timeout=600,
        )
        log = live.log()
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    # The CLI's cookie worked: the admin-only list answered (the server logs each request).
    assert re.search(r'"GET /api/customers(\?[^ ]*)? HTTP/1\.1" 200', log), log[-2000:]
    assert result.stdout.count("Test cases:") == 2, result.stdout[-2000:]
