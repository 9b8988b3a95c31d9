"""Sphinx configuration of the documentation site (``scripts/docs`` builds and serves it).

The pages are Markdown (myst-parser). The Python API comes from the
docstrings (autodoc) and the HTTP API from the OpenAPI schema the app serves
(``_ext/openapi_schema.py`` writes it, sphinxcontrib-openapi renders it), so
both need Django set up: the test suite's settings, which need no database
or network.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import django

DOCS = Path(__file__).resolve().parent
sys.path[:0] = [str(DOCS.parent), str(DOCS / "_ext")]
os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
django.setup()

import otp  # noqa: E402 (needs Django set up)

project = "django-otp-infobip"
author = "django-otp-infobip maintainers"
copyright = "django-otp-infobip maintainers"
release = version = otp.__version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinxcontrib.openapi",
    "openapi_schema",
    "local_assets",
]
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build", "_ext"]
root_doc = "index"

# Links to headings (page.md#a-heading) resolve as on GitHub; a broken one is
# a warning, and the build treats warnings as errors (-W).
myst_heading_anchors = 3

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": True}

# sphinxcontrib-openapi's renderer that lists request and response fields.
openapi_default_renderer = "httpdomain"

html_theme = "furo"
html_title = f"django-otp-infobip {release}"
html_show_sourcelink = False
html_copy_source = False
