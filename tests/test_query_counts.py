"""The hot path makes a small, constant number of SQL queries."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from otp import services
from tests.conftest import PHONE

pytestmark = pytest.mark.django_db(transaction=True)


def data_queries(context: CaptureQueriesContext) -> list[str]:
    # Transaction control is not a query against the data.
    skip = ("SAVEPOINT", "RELEASE SAVEPOINT", "BEGIN", "COMMIT")
    return [q["sql"] for q in context.captured_queries if not q["sql"].upper().startswith(skip)]


def measure(action) -> list[str]:
    with CaptureQueriesContext(connection) as context:
        action()
    return data_queries(context)


def test_first_send_makes_three_queries(outbox):
    queries = measure(lambda: services.send_code(PHONE))
    assert len(queries) == 3, queries  # insert, lock open rows, mark pending


def test_resend_makes_four_queries(outbox):
    services.send_code(PHONE)
    queries = measure(lambda: services.send_code(PHONE))
    assert len(queries) == 4, queries  # ... and supersede the older attempt


def test_successful_verify_makes_three_queries(outbox):
    services.send_code(PHONE)
    queries = measure(lambda: services.verify_code(PHONE, outbox[0].pin))
    assert len(queries) == 3, queries  # find, reserve a slot, mark verified


def test_wrong_pin_makes_two_queries(outbox):
    services.send_code(PHONE)
    wrong = "000000" if outbox[0].pin != "000000" else "111111"
    queries = measure(lambda: pytest.raises(Exception, services.verify_code, PHONE, wrong))
    assert len(queries) == 2, queries


def test_unknown_phone_makes_one_query():
    queries = measure(lambda: pytest.raises(Exception, services.verify_code, PHONE, "123456"))
    assert len(queries) == 1, queries
