"""Read-only admin of ``OtpAttempt`` for support staff.

Phones are shown masked and the provider's pinId never at all. Staff find a
customer's attempts by typing the full number, in any format the API accepts;
the search is an exact match on the indexed E.164 column. The query string
accepts only the page's own filters, and nothing sorts by the number: any other
lookup or order would let staff read a masked number, or the secret pinId, a
character at a time. The changelist never counts a large table (see
:class:`EstimatedCountPaginator`). Deleting goes through ``manage.py
otp_cleanup``, never the admin.
"""

from __future__ import annotations

from typing import Any, cast

from django.contrib import admin, messages
from django.contrib.admin.filters import FieldListFilter
from django.contrib.admin.utils import get_fields_from_path
from django.core.paginator import Paginator
from django.db import connections
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.functional import cached_property
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from otp.conf import otp_settings
from otp.exceptions import InvalidPhoneNumber
from otp.models import AttemptStatus, OtpAttempt
from otp.redaction import mask_phone
from otp.services import invalidate_attempts
from otp.validators.phones import normalize_phone


class EstimatedCountPaginator(Paginator):
    """Counts exactly when filtered or small; estimates an unfiltered large table.

    ``COUNT(*)`` of a table of millions of rows reads all of them on every page
    view. Unfiltered on PostgreSQL the planner's row estimate
    (``pg_class.reltuples``, kept fresh by autovacuum) is used instead once it
    reaches :attr:`exact_below`; below that, or with no statistics yet, a count
    capped by ``LIMIT`` is exact for a small table. Other databases (SQLite in
    development) fall back to an exact count past the cap.
    """

    exact_below = 10_000

    @cached_property
    def count(self) -> int:
        queryset = cast(QuerySet[Any], self.object_list)  # the changelist always pages a queryset
        if queryset.query.where:  # filtered or searched: the filter bounds the count
            return queryset.count()
        estimate = self._estimate(queryset)
        if estimate is not None and estimate >= self.exact_below:
            return estimate
        capped = queryset.order_by()[: self.exact_below].count()
        if capped < self.exact_below:
            return capped
        return max(estimate, capped) if estimate is not None else queryset.count()

    @staticmethod
    def _estimate(queryset: QuerySet[Any]) -> int | None:
        connection = connections[queryset.db]
        if connection.vendor != "postgresql":
            return None
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT reltuples FROM pg_class WHERE oid = to_regclass(%s)",
                [connection.ops.quote_name(queryset.model._meta.db_table)],
            )
            row = cursor.fetchone()
        # -1: never vacuumed nor analysed, so unknown.
        return int(row[0]) if row and row[0] >= 0 else None


@admin.register(OtpAttempt)
class OtpAttemptAdmin(admin.ModelAdmin):
    list_display = (
        "masked_phone",
        "status",
        "channel",
        "created_at",
        "expires_at",
        "verified_at",
        "verify_slots_used",
        "user",
    )
    list_filter = ("status", "created_at")
    date_hierarchy = "created_at"
    list_select_related = ("user",)
    # pin_id is a secret: it is in none of these, and the page shows only them.
    fields = (
        "masked_phone",
        "status",
        "channel",
        "provider",
        "verify_slots_used",
        "resends",
        "user",
        "created_at",
        "expires_at",
        "verified_at",
    )
    readonly_fields = fields
    # Shows the search box; the search itself is get_search_results below.
    search_fields = ("phone",)
    search_help_text = _("The full phone number, in any format the API accepts.")
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    actions = ("invalidate_pending",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[OtpAttempt]:
        # The secret is not even loaded.
        return super().get_queryset(request).defer("pin_id")

    # Not sortable: rows of known numbers would place a masked one between them.
    @admin.display(description=_("phone"))
    def masked_phone(self, attempt: OtpAttempt) -> str:
        return mask_phone(attempt.phone)

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest) -> bool:
        # Django allows any lookup on a local field (phone__startswith,
        # pin_id__regex...); only what the declared filters send is allowed
        # here, and anything else is answered 400 (DisallowedModelAdminLookup).
        return lookup in self.filter_parameters(request)

    def filter_parameters(self, request: HttpRequest) -> set[str]:
        """The query-string parameters of ``list_filter`` and ``date_hierarchy``.

        ``list_filter`` names fields; each field's filter says which parameters
        it reads. A filter given otherwise adds none, so its lookups stay
        refused until it is listed here.
        """
        parameters: set[str] = set()
        for item in self.get_list_filter(request):
            if isinstance(item, str):
                field = get_fields_from_path(self.model, item)[-1]
                spec = FieldListFilter.create(field, request, {}, self.model, self, field_path=item)
                parameters.update(name for name in spec.expected_parameters() if name)
        if self.date_hierarchy:
            parameters.update(f"{self.date_hierarchy}__{part}" for part in ("year", "month", "day"))
        return parameters

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[OtpAttempt], search_term: str
    ) -> tuple[QuerySet[OtpAttempt], bool]:
        # An exact match on the normalised number uses the phone index; a
        # LIKE '%…%' scan would read the whole table and let staff browse
        # numbers by fragments.
        if not search_term.strip():
            return queryset, False
        try:
            phone = normalize_phone(search_term, otp_settings.DEFAULT_REGION)
        except InvalidPhoneNumber:
            self.message_user(request, _("Search by a full, valid phone number, e.g. +14155552671."), messages.WARNING)
            return queryset.none(), False
        return queryset.filter(phone=phone), False

    @admin.action(description=_("Invalidate selected pending attempts"), permissions=("invalidate",))
    def invalidate_pending(self, request: HttpRequest, queryset: QuerySet[OtpAttempt]) -> None:
        # Only open attempts can be closed; narrowing first keeps "select all"
        # over a large table from loading every primary key.
        open_ = queryset.filter(status__in=(AttemptStatus.PENDING, AttemptStatus.SENDING))
        closed = invalidate_attempts(open_.values_list("pk", flat=True))
        self.message_user(
            request, ngettext("%d attempt invalidated.", "%d attempts invalidated.", closed) % closed, messages.SUCCESS
        )

    def has_invalidate_permission(self, request: HttpRequest) -> bool:
        # Fields are never editable, but closing a code is a change: only staff
        # holding the model's change permission may do it.
        return request.user.has_perm("otp.change_otpattempt")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: OtpAttempt | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: OtpAttempt | None = None) -> bool:
        return False
