"""The hot path makes a small, constant number of SQL queries, with every limit on."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from otp import services
from otp.exceptions import VerificationFailed
from tests.conftest import PHONE

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("production_limits")]

SEND_BUDGET = 6
VERIFY_BUDGET = 4


# Count the send against prefix/country/budget and read the phone's limit
# row (one statement on PostgreSQL, two on SQLite); record the send if that
# row is unchanged and insert the attempt (one statement on PostgreSQL, two in
# a transaction on SQLite); after the provider call, store the pinId (one
# statement that also locks the phone's open rows on PostgreSQL).
SEND_QUERIES = 3 if connection.vendor == "postgresql" else 5


def find_and_claim() -> int:
    """Finding the newest pending attempt and claiming a verify slot: one statement on PostgreSQL."""
    return 1 if connection.vendor == "postgresql" else 2


def data_queries(context: CaptureQueriesContext) -> list[str]:
    # Transaction control is not a query against the data.
    skip = ("SAVEPOINT", "RELEASE SAVEPOINT", "BEGIN", "COMMIT")
    return [q["sql"] for q in context.captured_queries if not q["sql"].upper().startswith(skip)]


def measure(action) -> list[str]:
    with CaptureQueriesContext(connection) as context:
        action()
    return data_queries(context)


def wrong(pin: str) -> str:
    return "000000" if pin != "000000" else "111111"


def test_first_send(outbox):
    assert len(measure(lambda: services.send_code(PHONE))) == SEND_QUERIES <= SEND_BUDGET


def test_send_that_supersedes_an_older_attempt(outbox):
    services.send_code(PHONE)
    with time_machine.travel(timezone.now() + timedelta(minutes=2)):
        assert len(measure(lambda: services.send_code(PHONE))) == SEND_QUERIES


def test_resend(outbox):
    services.send_code(PHONE)
    with time_machine.travel(timezone.now() + timedelta(minutes=2)):
        queries = measure(lambda: services.resend_code(PHONE))
    assert len(queries) <= SEND_BUDGET, queries


def test_successful_verify(outbox):
    services.send_code(PHONE)
    queries = measure(lambda: services.verify_code(PHONE, outbox[0].pin))
    assert len(queries) == find_and_claim() + 1, queries  # ... then mark verified


def test_successful_verify_after_a_failure_resets_the_phone(outbox):
    services.send_code(PHONE)
    pytest.raises(VerificationFailed, services.verify_code, PHONE, wrong(outbox[0].pin))
    queries = measure(lambda: services.verify_code(PHONE, outbox[0].pin))
    assert len(queries) == find_and_claim() + 2 <= VERIFY_BUDGET, queries  # ... mark verified, reset the phone


def test_wrong_pin(outbox):
    services.send_code(PHONE)
    queries = measure(lambda: pytest.raises(VerificationFailed, services.verify_code, PHONE, wrong(outbox[0].pin)))
    assert len(queries) == find_and_claim() + 1, queries  # ... then count the phone's failure


def test_unknown_phone():
    queries = measure(lambda: pytest.raises(VerificationFailed, services.verify_code, PHONE, "123456"))
    assert len(queries) == 1, queries
