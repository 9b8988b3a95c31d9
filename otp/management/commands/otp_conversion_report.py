"""``manage.py otp_conversion_report``: verified / sent per prefix and country."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from otp.limits.conversion import conversion_report


class Command(BaseCommand):
    help = (
        "Report the share of sent codes that were verified, per prefix and country, over a rolling window; "
        "log an otp_low_conversion event for each group under the threshold."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--hours", type=int, default=24, help="Window length (default 24).")
        parser.add_argument("--min-sends", type=int, help="Smallest volume worth flagging (OTP CONVERSION_MIN_SENDS).")
        parser.add_argument("--threshold", type=float, help="Flag below this share (OTP CONVERSION_ALERT_THRESHOLD).")
        parser.add_argument("--fail-on-alert", action="store_true", help="Exit with status 2 when a group is flagged.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["hours"] < 1:
            raise CommandError("--hours must be at least 1")
        if options["threshold"] is not None and not 0 <= options["threshold"] <= 1:
            raise CommandError("--threshold must be between 0 and 1")
        groups = conversion_report(
            hours=options["hours"], min_sends=options["min_sends"], threshold=options["threshold"]
        )
        for group in groups:
            line = f"{group.kind:8} {group.key:16} sent {group.sent:6} verified {group.verified:6} {group.rate:6.1%}"
            self.stdout.write(self.style.WARNING(line + "  LOW") if group.flagged else line)
        flagged = [g for g in groups if g.flagged]
        self.stdout.write(f"{len(groups)} groups, {len(flagged)} flagged.")
        if flagged and options["fail_on_alert"]:
            raise SystemExit(2)
