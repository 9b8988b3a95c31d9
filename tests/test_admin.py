"""The read-only OtpAttempt admin: masking, exact search, the action, bounded queries."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from otp.models import AttemptStatus, OtpAttempt
from otp.redaction import mask_phone
from tests.conftest import PHONE

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:otp_otpattempt_changelist")
OTHER_PHONE = "+442071838750"
PIN_ID = "SECRET-PIN-ID-4F1E"


def make(phone: str = PHONE, status: str = AttemptStatus.PENDING, **fields: Any) -> OtpAttempt:
    now = timezone.now()
    return OtpAttempt.objects.create(phone=phone, status=status, expires_at=now + timedelta(minutes=5), **fields)


@pytest.fixture
def staff(client, django_user_model):
    user = django_user_model.objects.create_superuser("support", "support@example.com", None)
    client.force_login(user)
    return client


def test_changelist_masks_the_phone_and_hides_pin_id(staff):
    attempt = make(pin_id=PIN_ID)
    response = staff.get(CHANGELIST)
    html = response.content.decode()
    assert response.status_code == 200
    assert mask_phone(PHONE) in html
    assert PHONE not in html and PHONE[1:] not in html and PIN_ID not in html
    detail = staff.get(reverse("admin:otp_otpattempt_change", args=[attempt.pk]))
    assert detail.status_code == 200
    assert mask_phone(PHONE) in detail.content.decode()
    assert PHONE not in detail.content.decode() and PIN_ID not in detail.content.decode()


@pytest.mark.parametrize("term", [PHONE, "+1 (415) 555-2671", " +1-415-555-2671 "])
def test_search_by_any_format_is_exact(staff, term):
    mine = make()
    make(OTHER_PHONE)
    with CaptureQueriesContext(connection) as queries:
        response = staff.get(CHANGELIST, {"q": term})
    assert [a.pk for a in response.context["cl"].result_list] == [mine.pk]
    assert not any("LIKE" in q["sql"].upper() for q in queries)


@pytest.mark.parametrize("term", ["415555", "+1415555267", "hello"])
def test_search_by_a_fragment_finds_nothing(staff, term):
    make()
    response = staff.get(CHANGELIST, {"q": term}, follow=True)
    assert list(response.context["cl"].result_list) == []
    assert "Search by a full, valid phone number" in response.content.decode()


def test_read_only_no_add_no_delete(staff):
    attempt = make()
    assert staff.get(reverse("admin:otp_otpattempt_add")).status_code == 403
    assert staff.post(reverse("admin:otp_otpattempt_delete", args=[attempt.pk]), {"post": "yes"}).status_code == 403
    change_url = reverse("admin:otp_otpattempt_change", args=[attempt.pk])
    staff.post(change_url, {"status": AttemptStatus.VERIFIED, "phone": OTHER_PHONE})
    attempt.refresh_from_db()
    assert (attempt.status, attempt.phone) == (AttemptStatus.PENDING, PHONE)
    html = staff.get(change_url).content.decode()
    assert 'name="_save"' not in html and "Delete" not in html
    actions = staff.get(CHANGELIST).context["action_form"].fields["action"].choices
    assert [name for name, _ in actions if name] == ["invalidate_pending"]


def test_action_invalidates_only_open_attempts(staff):
    pending = make()
    sending = make(OTHER_PHONE, AttemptStatus.SENDING)
    verified = make(status=AttemptStatus.VERIFIED)
    untouched = make(OTHER_PHONE)
    response = staff.post(
        CHANGELIST,
        {"action": "invalidate_pending", "index": 0, "_selected_action": [pending.pk, sending.pk, verified.pk]},
        follow=True,
    )
    assert "2 attempts invalidated." in response.content.decode()
    statuses = dict(OtpAttempt.objects.values_list("pk", "status"))
    assert statuses == {
        pending.pk: AttemptStatus.INVALIDATED,
        sending.pk: AttemptStatus.INVALIDATED,
        verified.pk: AttemptStatus.VERIFIED,
        untouched.pk: AttemptStatus.PENDING,
    }


def test_view_only_staff_cannot_invalidate(client, django_user_model):
    user = django_user_model.objects.create_user("viewer", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_otpattempt"))
    client.force_login(user)
    pending = make()
    response = client.get(CHANGELIST)
    assert response.status_code == 200 and "invalidate_pending" not in response.content.decode()
    client.post(CHANGELIST, {"action": "invalidate_pending", "index": 0, "_selected_action": [pending.pk]})
    pending.refresh_from_db()
    assert pending.status == AttemptStatus.PENDING


def _counts(queries: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in queries if "COUNT(" in q["sql"].upper()]


def test_changelist_queries_are_bounded_and_never_count_the_table(
    staff, django_user_model, django_assert_max_num_queries
):
    for i in range(120):  # more than one page, each with its own user
        user = django_user_model.objects.create_user(f"user{i}")
        make(f"+1415555{i:04d}", user=user)
    with django_assert_max_num_queries(8), CaptureQueriesContext(connection) as queries:
        response = staff.get(CHANGELIST)
    assert response.status_code == 200
    assert response.context["cl"].result_count == 120
    assert len(response.context["cl"].result_list) == 100
    # The only count is capped by LIMIT; nothing reads the whole table to count it.
    assert all("LIMIT" in sql.upper() for sql in _counts(queries))
    with django_assert_max_num_queries(8):
        assert staff.get(CHANGELIST, {"p": 2}).status_code == 200


def test_large_table_uses_the_postgresql_estimate(require_postgres, staff, monkeypatch):
    for i in range(30):
        make(f"+1415555{i:04d}")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE otp_otpattempt")  # sees this transaction's rows as live
    monkeypatch.setattr("otp.admin.EstimatedCountPaginator.exact_below", 10)  # 30 rows count as large
    with CaptureQueriesContext(connection) as queries:
        response = staff.get(CHANGELIST)
    assert response.context["cl"].result_count == 30
    assert _counts(queries) == []
    assert any("reltuples" in q["sql"] for q in queries)


def test_filtered_changelist_counts_exactly(staff):
    make()
    make(status=AttemptStatus.VERIFIED)
    response = staff.get(CHANGELIST, {"status__exact": AttemptStatus.VERIFIED})
    assert response.context["cl"].result_count == 1


@pytest.fixture
def viewer(client, django_user_model):
    """Staff holding only the view permission."""
    user = django_user_model.objects.create_user("viewer", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_otpattempt"))
    client.force_login(user)
    return client


# Each would tell a reader, a row at a time, what the page masks or hides.
LEAKING_LOOKUPS = [
    {"phone": PHONE},
    {"phone__startswith": PHONE[:8]},
    {"phone__contains": PHONE[4:9]},
    {"phone__regex": r"^\+14"},
    {"phone__in": PHONE},
    {"pin_id__isnull": "False"},
    {"pin_id__startswith": PIN_ID[:4]},
    {"pin_id__regex": "^SECRET"},
    {"pin_id__gte": "S"},
    {"purpose": "default"},
    {"user__username": "owner"},
    {"user": "1"},
    {"verify_slots_used": "0"},
    {"verify_slots_used__gte": "0"},
    {"status": AttemptStatus.PENDING},  # the filter itself sends status__exact
    {"created_at__hour": "0"},
    {"expires_at__gte": "2000-01-01"},
]


@pytest.mark.parametrize("who", ["viewer", "staff"])
@pytest.mark.parametrize("lookup", LEAKING_LOOKUPS, ids=lambda lookup: next(iter(lookup)))
def test_lookups_the_page_does_not_declare_are_refused(request, django_user_model, who, lookup):
    browser = request.getfixturevalue(who)
    make(pin_id=PIN_ID, user=django_user_model.objects.create_user("owner"))
    response = browser.get(CHANGELIST, lookup)
    assert response.status_code == 400
    assert response.json()["code"] == "bad_request"
    assert mask_phone(PHONE) not in response.content.decode()


@pytest.mark.parametrize("who", ["viewer", "staff"])
def test_the_declared_filters_keep_working(request, who):
    browser = request.getfixturevalue(who)
    now = timezone.now()
    verified = make(status=AttemptStatus.VERIFIED)
    pending_last_year = make(OTHER_PHONE, created_at=now - timedelta(days=400))
    this_year = {"created_at__year": now.year}
    day = {**this_year, "created_at__month": now.month, "created_at__day": now.day}
    last_week = {"created_at__gte": str(now - timedelta(days=7)), "created_at__lt": str(now + timedelta(days=1))}
    expected = {
        (("status__exact", AttemptStatus.VERIFIED),): [verified.pk],
        (("status__isnull", "False"),): [verified.pk, pending_last_year.pk],
        tuple(this_year.items()): [verified.pk],
        tuple(day.items()): [verified.pk],
        tuple(last_week.items()): [verified.pk],
    }
    for params, pks in expected.items():
        response = browser.get(CHANGELIST, dict(params))
        assert response.status_code == 200, params
        assert [a.pk for a in response.context["cl"].result_list] == pks, params
    # The filter's own links and the drill-down's are the parameters above.
    page = browser.get(CHANGELIST).content.decode()
    assert "status__exact=verified" in page and "created_at__gte=" in page and f"created_at__year={now.year}" in page


def test_ordering_never_sorts_by_the_masked_phone(staff):
    # Sorted by the full number, rows with a known number would place a
    # masked one between them.
    for phone in ("+14155550002", "+14155550001", "+14155550003"):
        make(phone)
    columns = staff.get(CHANGELIST).context["cl"].list_display
    phone_column, status_column = columns.index("masked_phone"), columns.index("status")
    for order in (f"{phone_column}", f"-{phone_column}"):
        response = staff.get(CHANGELIST, {"o": order})
        assert response.status_code == 200
        phones = [a.phone for a in response.context["cl"].result_list]
        assert phones == ["+14155550003", "+14155550001", "+14155550002"]  # newest first, as by default
    by_status = staff.get(CHANGELIST, {"o": status_column})
    assert by_status.context["cl"].get_ordering_field_columns() == {status_column: "asc"}
