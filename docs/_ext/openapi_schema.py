"""Sphinx extension: write the OpenAPI schema the app serves, for the HTTP API page to render.

At the start of every build drf-spectacular generates the schema of the app's
endpoints (``otp.urls``, as a site mounts them) exactly as the site serves it
at ``/api/schema/``, into ``_build/openapi.json`` beside the pages, where the
page's ``openapi`` directive (sphinxcontrib-openapi) reads it. No network, and
no copy of the schema in git to drift.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sphinx.application import Sphinx

#: Where the schema is written, relative to the documentation's source directory.
SCHEMA_PATH = Path("_build") / "openapi.json"


def write_schema(app: Sphinx) -> None:
    from drf_spectacular.generators import SchemaGenerator
    from drf_spectacular.renderers import OpenApiJsonRenderer

    schema = SchemaGenerator(urlconf="otp.urls").get_schema(request=None, public=True)
    content = OpenApiJsonRenderer().render(schema, renderer_context={})
    path = Path(app.srcdir) / SCHEMA_PATH
    path.parent.mkdir(parents=True, exist_ok=True)
    # Rewritten only when it changed, so an unchanged schema rebuilds no page.
    if not path.is_file() or path.read_bytes() != content:
        path.write_bytes(content)


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("builder-inited", write_schema)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
