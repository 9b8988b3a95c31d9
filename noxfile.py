"""The Python x Django matrix, lint and type checks: `nox` runs them all.

Each test session builds its own virtualenv from requirements-dev.txt with the
Django series pinned; Django 6 needs Python 3.12 or newer. requirements.txt
installs the newest versions pyproject.toml allows; `lowest` runs the tests of
the IP limits and the cache on the oldest django-ratelimit and redis allowed.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import nox

nox.options.sessions = ["lint", "typecheck", "tests", "lowest"]
nox.options.reuse_existing_virtualenvs = True

MATRIX = [("3.11", "5.2"), ("3.13", "6.1")]
LIMIT_AND_CACHE_TESTS = [
    "tests/test_limits.py",
    "tests/test_cache.py",
    "tests/test_client_ip.py",
    "tests/test_resilience.py",
]


def lowest_allowed(*names: str) -> list[str]:
    """``name==x`` for the ``>=x`` bound pyproject.toml gives each of ``names``."""
    project = tomllib.loads(Path("pyproject.toml").read_text())["project"]
    requirements = project["dependencies"] + sum(project["optional-dependencies"].values(), [])
    bounds = dict(re.findall(r"^([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?>=([^,]+)", "\n".join(requirements), re.MULTILINE))
    return [f"{name}=={bounds[name]}" for name in names]


@nox.session(python="3.11")
def lint(session: nox.Session) -> None:
    session.install("ruff>=0.17,<0.18")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python="3.11")
def typecheck(session: nox.Session) -> None:
    session.install("-r", "requirements-dev.txt")
    session.run("mypy")


@nox.session
@nox.parametrize(("python", "django"), MATRIX, ids=[f"py{p}-django{d}" for p, d in MATRIX])
def tests(session: nox.Session, django: str) -> None:
    session.install("-r", "requirements-dev.txt", f"Django~={django}.0")
    session.run("python", "-c", "import django, sys; print('Django', django.__version__, 'on', sys.version)")
    session.run("pytest", "-q", "-p", "no:cacheprovider", *session.posargs)


@nox.session(python="3.11")
def lowest(session: nox.Session) -> None:
    session.install("-r", "requirements-dev.txt")
    session.install(*lowest_allowed("django-ratelimit", "redis"))
    session.run("pip", "list", "--format=freeze")  # the versions this run tested
    session.run("pytest", "-q", "-p", "no:cacheprovider", *LIMIT_AND_CACHE_TESTS, *session.posargs)
