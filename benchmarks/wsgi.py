"""What gunicorn serves: the example app, with the bare baselines mounted under ``/bare``
and the example app trusting access tokens (``EVERSHOP_CUSTOMER_CHECK_SESSION_EACH_REQUEST
= False``) under ``/trusting``.

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
from flask_evershop_customer.state import get_state

from . import baseline_app

BARE_PREFIX = "/bare"
TRUSTING_PREFIX = "/trusting"

example = create_app()
trusting = create_app({"EVERSHOP_CUSTOMER_CHECK_SESSION_EACH_REQUEST": False})
settings = get_state(example).settings
baseline = baseline_app.create_app(
    example.config["SQLALCHEMY_DATABASE_URI"],
    hash_method=os.environ["EVERSHOP_BENCH_HASH_METHOD"],
    stored_hash=os.environ["EVERSHOP_BENCH_STORED_HASH"],
    jwt_key=settings.jwt_key,
    refresh_key=settings.refresh_key,
    access_lifetime=settings.access_token_lifetime,
)
application = DispatcherMiddleware(example, {BARE_PREFIX: baseline, TRUSTING_PREFIX: trusting})
