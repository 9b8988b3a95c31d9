"""The helper the hand-written statements share: run one, name a table, pass a time.

Raw SQL is kept for what the ORM cannot say in one statement (the
compare-and-swap upserts and the verify claim); everything else uses the ORM.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import Model


def execute(sql: str, params: list[Any]) -> Any:
    """Run one statement; its first row if it returns rows, else the number of rows it changed."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone() if cursor.description else cursor.rowcount


def table_name(model: type[Model]) -> str:
    """The model's table, quoted for the current backend."""
    return connection.ops.quote_name(model._meta.db_table)


def db_time(value: datetime) -> Any:
    """A datetime as the backend stores it (naive UTC text on SQLite)."""
    return connection.ops.adapt_datetimefield_value(value)
