"""``manage.py otp_emulator``: run the local Infobip 2FA emulator until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import secrets
import signal
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from otp.emulator import Emulator, EmulatorServer, FaultPlan, NotLoopback
from otp.emulator.errors import ApiError
from otp.emulator.faults import GROUPS, KINDS, parse_fault_spec, parse_latency_spec
from otp.emulator.validation import FieldReader, configuration


def _config_value(text: str) -> Any:
    if text in ("true", "false"):
        return text == "true"
    return int(text) if text.isdigit() else text


class Command(BaseCommand):
    help = "Run a local Infobip 2FA emulator on a loopback address (development, tests, benchmarks)."
    # It serves HTTP only: no database, and no check of the site's provider settings.
    requires_system_checks: list[str] = []
    requires_migrations_checks = False

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)")
        parser.add_argument("--port", type=int, default=18081, help="port (default 18081, 0 for any free one)")
        parser.add_argument(
            "--api-key",
            action="append",
            dest="api_keys",
            metavar="KEY",
            help="accepted API key; repeatable (default: a random key, printed)",
        )
        parser.add_argument("--seed", action="store_true", help="create one application and SMS template at start")
        parser.add_argument("--app-id", help="ID of the seeded application (implies --seed)")
        parser.add_argument("--msg-id", help="ID of the seeded template (implies --seed)")
        parser.add_argument(
            "--app-config",
            action="append",
            default=[],
            metavar="FIELD=VALUE",
            help="seeded application configuration (implies --seed), e.g. pinAttempts=5",
        )
        parser.add_argument("--pin-length", type=int, default=6, help="PIN length of the seeded template")
        parser.add_argument(
            "--no-send-limits",
            action="store_true",
            help="ignore sendPinPerApplicationLimit and sendPinPerPhoneNumberLimit",
        )
        parser.add_argument("--no-verify-limit", action="store_true", help="ignore verifyPinLimit")
        parser.add_argument(
            "--latency-ms",
            action="append",
            default=[],
            metavar="[ROUTE=]MS",
            help=f"added latency, for all routes or one of {', '.join(GROUPS[1:])}",
        )
        parser.add_argument(
            "--fault",
            action="append",
            default=[],
            metavar="KIND[,name=value...]",
            help=f"fault to start with, e.g. error,status=503,route=verify,count=2; kinds: {', '.join(KINDS)}",
        )
        parser.add_argument(
            "--hang-seconds", type=float, default=300.0, help="how long a 'hang' fault holds a connection (default 300)"
        )
        parser.add_argument(
            "--create-status",
            type=int,
            choices=(200, 201),
            default=200,
            help="status of POST /2fa/2/applications (Infobip's SDKs expect 200)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        faults = FaultPlan()
        try:
            for spec in options["latency_ms"]:
                faults.set_latency(*parse_latency_spec(spec))
            for spec in options["fault"]:
                faults.add(parse_fault_spec(spec))
        except (TypeError, ValueError) as err:
            raise CommandError(str(err)) from err
        emulator = Emulator(
            send_limits=not options["no_send_limits"],
            verify_limit=not options["no_verify_limit"],
            create_status=options["create_status"],
        )
        seeded = None
        if options["seed"] or options["app_id"] or options["msg_id"] or options["app_config"]:
            seeded = emulator.seed(
                application_id=options["app_id"],
                message_id=options["msg_id"],
                configuration=self._app_config(options["app_config"]),
                template={"pinLength": options["pin_length"]},
            )
        api_keys = options["api_keys"] or [secrets.token_hex(16)]
        try:
            server = EmulatorServer(
                emulator,
                api_keys=api_keys,
                host=options["host"],
                port=options["port"],
                faults=faults,
                hang_seconds=options["hang_seconds"],
            )
        except NotLoopback as err:
            raise CommandError(str(err)) from err

        def started(server: EmulatorServer) -> None:
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, server.stop)
            self._announce(server, api_keys, seeded)

        try:
            asyncio.run(server.serve(on_started=started))
        except OSError as err:
            raise CommandError(f"cannot listen on {options['host']}:{options['port']}: {err}") from err
        self.stdout.write("Infobip 2FA emulator stopped.")

    @staticmethod
    def _app_config(pairs: list[str]) -> dict[str, Any]:
        raw = {}
        for pair in pairs:
            name, sep, value = pair.partition("=")
            if not sep:
                raise CommandError(f"--app-config {pair!r} is not FIELD=VALUE")
            raw[name.strip()] = _config_value(value.strip())
        reader = FieldReader(raw)
        parsed = configuration(reader)
        try:
            reader.done()
        except ApiError as err:
            raise CommandError(f"--app-config: {err.validation_errors}") from err
        return parsed

    def _announce(self, server: EmulatorServer, api_keys: list[str], seeded: tuple[str, str] | None) -> None:
        write = self.stdout.write
        write(f"Infobip 2FA emulator listening on {server.base_url} (loopback only)")
        write(f"  API key:        {api_keys[0]}" + (f" (+{len(api_keys) - 1} more)" if len(api_keys) > 1 else ""))
        if seeded:
            write(f"  application ID: {seeded[0]}")
            write(f"  message ID:     {seeded[1]}")
        write(f"  control API:    {server.base_url}/_emulator/")
        env = f"INFOBIP_BASE_URL={server.base_url} INFOBIP_API_KEY={api_keys[0]}"
        if seeded:
            env += f" INFOBIP_2FA_APP_ID={seeded[0]} INFOBIP_2FA_MSG_ID={seeded[1]}"
        write(f"  site settings:  OTP_PROVIDER=otp.providers.infobip.InfobipProvider {env}")
        self.stdout.flush()
