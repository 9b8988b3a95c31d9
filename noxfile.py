"""The Python x Django matrix, lint and type checks: `nox` runs them all.

Each test session builds its own virtualenv from requirements-dev.txt with the
Django series pinned; Django 6 needs Python 3.12 or newer.
"""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.reuse_existing_virtualenvs = True

MATRIX = [("3.11", "5.2"), ("3.13", "6.1")]


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
