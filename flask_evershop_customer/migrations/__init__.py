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

from pathlib import Path
from typing import Any

MIGRATIONS_DIRECTORY = str(Path(__file__).resolve().parent)
VERSIONS_DIRECTORY = str(Path(MIGRATIONS_DIRECTORY) / "versions")
BRANCH = "evershop_customer"


def add_version_location(config: Any) -> Any:
    """Add this package's revisions to an Alembic ``Config``'s ``version_locations``,
    keeping the host's own ``versions`` folder. Returns ``config``."""
    current = config.get_main_option("version_locations")
    if not current:
        current = str(Path(config.get_main_option("script_location")) / "versions")
    locations = current.split()
    if VERSIONS_DIRECTORY not in locations:
        locations.append(VERSIONS_DIRECTORY)
    config.set_main_option("version_locations", " ".join(locations))
    return config
