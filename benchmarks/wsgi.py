"""What gunicorn serves: the example app, with the bare baselines mounted under ``/bare``.

Both apps live in the same worker processes, so the library and its floor share the
workers, the interpreter, the keep-alive connections and the moment they are measured
in; the library never sees a ``/bare`` request. Configuration comes from the
environment the runner sets: ``FLASK_*`` for the example app (as in production), and
``EVERSHOP_BENCH_*`` for the baseline.
"""

from __future__ import annotations

import os

from werkzeug.middleware.dispatcher import DispatcherMiddleware

from examples.app import create_app

from . import baseline_app

BARE_PREFIX = "/bare"

example = create_app()
baseline = baseline_app.create_app(
    example.config["SQLALCHEMY_DATABASE_URI"],
    hash_method=os.environ["EVERSHOP_BENCH_HASH_METHOD"],
    stored_hash=os.environ["EVERSHOP_BENCH_STORED_HASH"],
)
application = DispatcherMiddleware(example, {BARE_PREFIX: baseline})
