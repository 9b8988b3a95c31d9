"""Dependencies: used through their public names only, and declared with one range everywhere."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROJECT_PACKAGES = {"otp", "otpsite"}


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _is_dependency(module: str | None, level: int) -> bool:
    return level == 0 and module is not None and module.split(".")[0] not in PROJECT_PACKAGES


def private_uses(source: str) -> list[str]:
    """The private names of other packages a module imports, or reads off a module or name it imported."""
    tree = ast.parse(source)
    imported: set[str] = set()  # local names bound to another package's modules and objects
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if not _is_dependency(alias.name, 0):
                    continue
                if any(_private(part) for part in alias.name.split(".")):
                    found.append(f"line {node.lineno}: import {alias.name}")
                imported.add(alias.asname or alias.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom) and _is_dependency(node.module, node.level):
            assert node.module is not None
            for alias in node.names:
                if _private(alias.name) or any(_private(part) for part in node.module.split(".")):
                    found.append(f"line {node.lineno}: from {node.module} import {alias.name}")
                imported.add(alias.asname or alias.name)
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and _private(node.attr)
            and isinstance(node.value, ast.Name)
            and node.value.id in imported
        ):
            found.append(f"line {node.lineno}: {node.value.id}.{node.attr}")
    return found


def test_no_module_of_the_project_uses_a_private_name_of_a_dependency():
    offences = {
        str(path.relative_to(ROOT)): uses
        for package in sorted(PROJECT_PACKAGES)
        for path in sorted((ROOT / package).rglob("*.py"))
        if (uses := private_uses(path.read_text()))
    }
    assert offences == {}


def test_the_check_sees_imports_and_attributes_of_private_names():
    source = """
from django_ratelimit.core import _split_rate, get_usage
from redis._parsers import Encoder
import django.utils._os
from django.core.cache import cache
from otp.limits import _private_but_ours
from . import _sibling
from __future__ import annotations
cache._cache.get_client()
cache.__class__
"""
    assert private_uses(source) == [
        "line 2: from django_ratelimit.core import _split_rate",
        "line 3: from redis._parsers import Encoder",
        "line 4: import django.utils._os",
        "line 9: cache._cache",
    ]


def _ranges(lines: list[str]) -> dict[str, str]:
    """``{"django": ">=5.2,<6.2", ...}`` from requirement lines (extras and comments left out)."""
    ranges = {}
    for line in lines:
        line = line.split("#")[0].strip()
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?\s*(.*)", line)
        if match and not line.startswith("-"):
            ranges[match[1].lower()] = match[2].replace(" ", "")
    return ranges


def test_the_package_declares_the_ranges_the_site_installs():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = _ranges(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        declared.update(_ranges(extra))
    installed = _ranges((ROOT / "requirements.txt").read_text().splitlines())
    assert declared == {name: installed[name] for name in declared}
