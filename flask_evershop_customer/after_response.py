"""Work that must not be timed with the answer: run in a thread of its own once the
response has been sent (the server closes it then), in a copy of the request's context.

A password reset request issues its token this way, so the answer to an email with an
account takes as long as to one without, the host's mail included, and neither the
worker nor the connection is held meanwhile.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from flask import Response, copy_current_request_context, current_app

_running: set[threading.Thread] = set()
_lock = threading.Lock()


def run_after_response(response: Response, job: Callable[[], None]) -> None:
    """Run ``job`` once ``response`` is sent, in a thread with a copy of the current
    request's context (its app, database session and ``request``). An exception is
    logged on the app's logger: the answer is long gone."""
    in_context = copy_current_request_context(job)
    app_logger = current_app.logger

    def run() -> None:
        try:
            in_context()
        except Exception:
            app_logger.exception("Work after the response failed")
        finally:
            with _lock:
                _running.discard(threading.current_thread())

    started = threading.Event()

    def start() -> None:
        # Once only: Werkzeug runs the close callbacks again at each ``close()`` (a test
        # client's ``with`` block closes a response that was closed already).
        with _lock:
            if started.is_set():
                return
            started.set()
            # Not a daemon: a worker shutting down gracefully finishes it first.
            thread = threading.Thread(target=run, name="evershop-customer-after-response")
            _running.add(thread)
        thread.start()

    response.call_on_close(start)


def wait_for_work_after_responses(timeout: float = 10.0) -> None:
    """Wait until the work of every closed response has finished (for tests: a reset
    token reaches ``password_reset_requested`` only then). :class:`TimeoutError` if it
    takes longer than ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        with _lock:
            running = next(iter(_running), None)
        if running is None:
            return
        running.join(max(0.0, deadline - time.monotonic()))
        if running.is_alive():
            raise TimeoutError("work after a response is still running")
