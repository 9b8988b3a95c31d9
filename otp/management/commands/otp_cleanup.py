"""``manage.py otp_cleanup``: delete expired OTP attempts and idle state, or all attempts of one number.

Schedule it daily (cron, a Kubernetes CronJob, …). The work is done by
:mod:`otp.retention`; this command only parses options and reports.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from otp.conf import otp_settings
from otp.exceptions import InvalidPhoneNumber
from otp.redaction import mask_phone
from otp.retention import DEFAULT_BATCH_SIZE, DeletionResult, PurgeResult, erase_phone, purge_expired


class Command(BaseCommand):
    help = (
        "Delete OTP attempts that expired more than the retention period ago, the limit state and "
        "used verification token records no longer in use, or (--erase-phone) every attempt of one phone number."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--retention-days",
            type=int,
            metavar="N",
            help="Keep expired attempts this many days (default: OTP['RETENTION_DAYS']).",
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=DEFAULT_BATCH_SIZE,
            metavar="N",
            help=f"Rows deleted per statement (default: {DEFAULT_BATCH_SIZE}).",
        )
        parser.add_argument("--dry-run", action="store_true", help="Count what would be deleted; delete nothing.")
        parser.add_argument(
            "--erase-phone",
            metavar="NUMBER",
            help="Delete every attempt of this number, whatever its age (right to erasure).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        dry_run = options["dry_run"]
        try:
            if options["erase_phone"] is not None:
                if options["retention_days"] is not None:
                    raise CommandError("--erase-phone and --retention-days cannot be combined.")
                erased = erase_phone(options["erase_phone"], batch_size=options["batch_size"], dry_run=dry_run)
                self._report(erased, f"of {mask_phone(erased.phone)}")
                return
            retention_days = options["retention_days"]
            if retention_days is None:
                retention_days = otp_settings.RETENTION_DAYS
            purged = purge_expired(retention_days, batch_size=options["batch_size"], dry_run=dry_run)
        except InvalidPhoneNumber as err:
            raise CommandError(
                "--erase-phone: not a valid phone number (use international format, e.g. +14155552671)."
            ) from err
        except ValueError as err:
            raise CommandError(str(err)) from err
        self._report(
            purged, f"that expired before {purged.cutoff:%Y-%m-%d %H:%M:%S %Z} ({retention_days} days of retention)"
        )

    def _report(self, result: DeletionResult, what: str) -> None:
        if result.dry_run:
            self.stdout.write(
                self.style.WARNING(
                    f"Dry run: would delete {result.deleted} OTP attempt(s) {what}; nothing was deleted."
                )
            )
        else:
            self.stdout.write(
                self.style.SUCCESS(f"Deleted {result.deleted} OTP attempt(s) {what} in {result.batches} batch(es).")
            )
        if isinstance(result, PurgeResult):
            idle = f"{result.limit_states} phone limit state(s) and {result.counters} rate counter(s) no longer in use"
            self.stdout.write(f"Would delete {idle}." if result.dry_run else f"Deleted {idle}.")
            used = f"{result.token_uses} used verification token record(s) past their expiry"
            self.stdout.write(f"Would delete {used}." if result.dry_run else f"Deleted {used}.")
