"""Sphinx configuration of the manual: ``make docs`` builds it into ``docs/_build/html``."""

from __future__ import annotations

import flask_evershop_customer

project = "flask-evershop-customer"
author = "The flask-evershop-customer developers"
copyright = "2026, " + author  # noqa: A001 - Sphinx's name for it
release = flask_evershop_customer.__version__
version = release

extensions = ["myst_parser", "sphinx.ext.autodoc"]
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build"]
root_doc = "index"

# Links to a heading of another chapter (`api.md#log-out`) need the headings' anchors.
myst_heading_anchors = 4
# Code blocks that are not Python (console, cron) are shown as they are.
highlight_language = "none"

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": True}

html_theme = "alabaster"
html_title = "flask-evershop-customer"
html_theme_options = {"description": "EverShop's customer-account API for Flask"}
