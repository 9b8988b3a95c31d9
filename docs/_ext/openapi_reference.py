"""Sphinx extension: the HTTP API reference, rendered from the app's own OpenAPI schema.

At build time drf-spectacular generates the schema of the app's endpoints
(``otp.urls``, as a site mounts them) exactly as the site serves it at
``/api/schema/``; the page's marker line is replaced with one section per
endpoint: its request fields, an example, and every status code with its
body. No network, no copy of the schema to drift.
"""

from __future__ import annotations

import json
from typing import Any

from sphinx.application import Sphinx
from sphinx.util import logging

MARKER = "<!-- openapi-endpoints -->"
logger = logging.getLogger(__name__)


def generate_schema() -> dict[str, Any]:
    from drf_spectacular.generators import SchemaGenerator

    return SchemaGenerator(urlconf="otp.urls").get_schema(request=None, public=True)


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node or len(node.get("allOf", ())) == 1:
        if "allOf" in node:
            node = node["allOf"][0]
            continue
        name = node["$ref"].rsplit("/", 1)[-1]
        node = schema["components"]["schemas"][name]
    return node


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _type(schema: dict[str, Any], node: dict[str, Any]) -> str:
    node = _resolve(schema, node)
    if "enum" in node:
        return " or ".join(f"`{json.dumps(value)}`" for value in node["enum"] if value not in ("", None))
    kind = node.get("type", "object")
    if kind == "array":
        return f"array of {_type(schema, node.get('items', {}))}"
    details = [str(node["format"])] if "format" in node else []
    if "minLength" in node and "maxLength" in node:
        details.append(f"{node['minLength']}–{node['maxLength']} characters")
    elif "maxLength" in node:
        details.append(f"at most {node['maxLength']} characters")
    return kind + (f" ({', '.join(details)})" if details else "")


def _fields(schema: dict[str, Any], node: dict[str, Any]) -> list[str]:
    node = _resolve(schema, node)
    required = set(node.get("required", ()))
    rows = ["| field | type | required | meaning |", "|---|---|---|---|"]
    for name, prop in node.get("properties", {}).items():
        description = prop.get("description", "")
        rows.append(
            f"| `{name}` | {_type(schema, prop)} | {'yes' if name in required else 'no'} | {_cell(description)} |"
        )
    return rows


def _body(schema: dict[str, Any], content: dict[str, Any]) -> str:
    media = content.get("application/json")
    if not media:
        return "none"
    node = _resolve(schema, media["schema"])
    fields = ", ".join(f'"{name}": …' for name in node.get("properties", {}))
    return f"`{{{fields}}}`"


def render(schema: dict[str, Any]) -> str:
    lines: list[str] = []
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            lines += [f"### `{method.upper()} {path}`", "", f"**{operation.get('summary', '')}.**"]
            if operation.get("description"):
                lines += ["", operation["description"]]
            body = operation.get("requestBody", {}).get("content", {})
            if "application/json" in body:
                media = body["application/json"]
                lines += ["", "Request body (`application/json`):", "", *_fields(schema, media["schema"])]
                for example in media.get("examples", {}).values():
                    lines += ["", "```json", json.dumps(example["value"]), "```"]
            lines += ["", "| status | when | body |", "|---|---|---|"]
            for status, response in sorted(operation.get("responses", {}).items()):
                description = _cell(response.get("description", ""))
                lines.append(f"| {status} | {description} | {_body(schema, response.get('content', {}))} |")
            for status, response in sorted(operation.get("responses", {}).items()):
                content = response.get("content", {}).get("application/json")
                if status.startswith("2") and content:
                    lines += ["", f"The {status} body:", "", *_fields(schema, content["schema"])]
            lines.append("")
    return "\n".join(lines)


def insert_endpoints(app: Sphinx, docname: str, source: list[str]) -> None:
    if MARKER not in source[0]:
        return
    source[0] = source[0].replace(MARKER, render(generate_schema()))


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("source-read", insert_endpoints)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
