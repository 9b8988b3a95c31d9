"""The hand-written attempt statements follow the model, and the field rename touched no SQL."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from otp import attempt_sql
from otp.models import AttemptStatus, Channel, OtpAttempt
from tests.conftest import PHONE

pytestmark = pytest.mark.django_db


def test_an_insert_writes_every_field_of_the_model_as_given():
    """The columns come from the model: a value in any field, defaulted or not, reaches the row."""
    now = timezone.now().replace(microsecond=0)
    given = OtpAttempt(
        phone=PHONE,
        pin_id="pin-given",
        status=AttemptStatus.PENDING,
        channel=Channel.VOICE,
        purpose="login",
        provider="locmem",
        verify_slots_used=2,
        created_at=now - timedelta(minutes=1),
        expires_at=now + timedelta(minutes=5),
        verified_at=now,
        resends=3,
    )
    pk = attempt_sql.insert_attempt(given)
    assert pk is not None

    stored = OtpAttempt.objects.get(pk=pk)
    fields = [f.attname for f in OtpAttempt._meta.concrete_fields if not f.primary_key]
    assert {name: getattr(stored, name) for name in fields} == {name: getattr(given, name) for name in fields}


def test_an_insert_behind_a_claim_that_writes_nothing_inserts_nothing():
    attempt = OtpAttempt(phone=PHONE, expires_at=timezone.now() + timedelta(minutes=5))
    never: tuple[str, list[object]] = (f"UPDATE {attempt_sql._T} SET status = status WHERE 1 = 0", [])  # noqa: S608

    assert attempt_sql.insert_attempt(attempt, claim=never) is None
    assert not OtpAttempt.objects.exists()


@pytest.mark.django_db(transaction=True)  # SQLite's schema editor refuses to run inside a transaction
def test_verify_slots_used_keeps_its_column_and_its_migration_runs_no_sql():
    assert OtpAttempt._meta.get_field("verify_slots_used").column == "failed_verifies"
    columns = [c.name for c in connection.introspection.get_table_description(connection.cursor(), "otp_otpattempt")]
    assert "failed_verifies" in columns and "verify_slots_used" not in columns

    out = io.StringIO()
    call_command("sqlmigrate", "otp", "0006", stdout=out)
    statements = [
        line for line in out.getvalue().splitlines() if line and not line.startswith(("--", "BEGIN", "COMMIT"))
    ]
    assert statements == []
