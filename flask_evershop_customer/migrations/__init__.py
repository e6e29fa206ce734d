"""The shipped Alembic revisions (branch ``evershop_customer``) and how a host uses them.

A host with Flask-Migrate adds them to its own migrations::

    migrate = Migrate(app, db)

    @migrate.configure
    def configure_alembic(config):
        return add_version_location(config)

and runs ``flask db upgrade heads``. This folder is also a complete Alembic environment
(``env.py``), which the example app uses directly.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

MIGRATIONS_DIRECTORY = str(Path(__file__).resolve().parent)
VERSIONS_DIRECTORY = str(Path(MIGRATIONS_DIRECTORY) / "versions")
BRANCH = "evershop_customer"


#: Alembic's names for the separator of path lists (``path_separator``).
SEPARATORS = {"space": " ", "newline": "\n", "os": os.pathsep, ":": ":", ";": ";"}


def add_version_location(config: Any) -> Any:
    """Add this package's revisions to an Alembic ``Config``'s ``version_locations``,
    keeping the host's own ``versions`` folder. Returns ``config``.

    The list is written with the separator the host's configuration names; without one
    (Alembic's legacy splitting on spaces and commas, deprecated since Alembic 1.16) it
    is written with ``os.pathsep`` and ``path_separator = os`` (``version_path_separator``
    too, for Alembic before 1.16).
    """
    current = config.get_main_option("version_locations") or ""
    named = config.get_main_option("path_separator") or config.get_main_option(
        "version_path_separator"
    )
    if named:
        separator = SEPARATORS.get(named, os.pathsep)
        locations = [item.strip() for item in current.split(separator) if item.strip()]
    else:
        separator = os.pathsep
        locations = [item for item in re.split(r", *| +", current) if item]
        config.set_main_option("path_separator", "os")
        config.set_main_option("version_path_separator", "os")
    if not locations:
        locations = [str(Path(config.get_main_option("script_location")) / "versions")]
    if VERSIONS_DIRECTORY not in locations:
        locations.append(VERSIONS_DIRECTORY)
    config.set_main_option("version_locations", separator.join(locations))
    return config
