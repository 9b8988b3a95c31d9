"""``manage.py otp_provision``: create or update the Infobip 2FA application and templates.

Replaces the hand-pasted curl commands. The logic is in :mod:`otp.providers.provisioning`;
this module reads options, prints, and turns every failure into one line on
stderr and a non-zero exit.
"""

from __future__ import annotations

import json
import os
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from otp.checks import check_policy, check_webotp_domain
from otp.conf import otp_settings
from otp.exceptions import InvalidPhoneNumber, ProviderError
from otp.providers import provisioning, webotp
from otp.providers.infobip import DEFAULT_CONNECT_TIMEOUT, DEFAULT_READ_TIMEOUT, InvalidBaseUrl
from otp.providers.infobip_management import InfobipManagementClient
from otp.redaction import mask_phone
from otp.validators.phones import normalize_phone

#: Exit status of ``--check`` when Infobip is looser than the local policy (errors exit 1).
NOT_COMPLIANT = 2


def _show(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


class Command(BaseCommand):
    help = (
        "Create or update the Infobip 2FA application and SMS template (and, for origin-bound codes, a voice "
        "template) from the OTP policy, and print INFOBIP_2FA_APP_ID / INFOBIP_2FA_MSG_ID "
        "(/ INFOBIP_2FA_VOICE_MSG_ID)."
    )
    # It runs before the IDs exist, when the provider's own check (otp.E010) still fails.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        connection = parser.add_argument_group("connection (the API key never comes from the command line)")
        connection.add_argument("--base-url", help="Infobip base URL; default PROVIDER_OPTIONS['base_url'].")
        connection.add_argument(
            "--api-key-env",
            metavar="NAME",
            help="Read the API key from this environment variable instead of PROVIDER_OPTIONS['api_key'].",
        )
        app = parser.add_argument_group("application")
        app.add_argument(
            "--name",
            default=provisioning.DEFAULT_NAME,
            help="Application name to create or update (default %(default)s).",
        )
        app.add_argument("--pin-attempts", type=int, help="At most OTP['MAX_VERIFY_ATTEMPTS'] (the default).")
        app.add_argument(
            "--pin-ttl", metavar="DURATION", help="e.g. 5m or 300s; at most OTP['CODE_TTL_SECONDS'] (the default)."
        )
        app.add_argument("--verify-pin-limit", metavar="LIMIT", help=f"default {provisioning.DEFAULT_VERIFY_PIN_LIMIT}")
        app.add_argument(
            "--send-pin-per-application-limit",
            metavar="LIMIT",
            help=f"default {provisioning.DEFAULT_SEND_PIN_PER_APPLICATION_LIMIT}",
        )
        app.add_argument(
            "--send-pin-per-phone-number-limit",
            metavar="LIMIT",
            help=f"default {provisioning.DEFAULT_SEND_PIN_PER_PHONE_NUMBER_LIMIT}",
        )
        template = parser.add_argument_group("SMS template")
        template.add_argument(
            "--message-text",
            help=f"Must contain {{{{pin}}}}; default {provisioning.DEFAULT_MESSAGE_TEXT!r}. With OTP['WEBOTP_DOMAIN'] "
            "set, the human-readable part without {{pin}}: the line '@<domain> #{{pin}}' is appended "
            f"(default {webotp.DEFAULT_HEADLINE!r}).",
        )
        template.add_argument("--pin-length", type=int, help="Must equal OTP['PIN_LENGTH'] (the default).")
        template.add_argument("--sender-id", help="Sender shown to the recipient; Infobip's default if unset.")
        template.add_argument(
            "--language",
            help=f"SMS language and voice text-to-speech language (default {provisioning.DEFAULT_LANGUAGE}).",
        )
        voice = parser.add_argument_group(
            "voice calls (the SMS template read out; a template of their own with OTP['WEBOTP_DOMAIN'] "
            "or a configured voice_message_id)"
        )
        voice.add_argument(
            "--voice-message-text",
            help=f"Text of the voice template, with {{{{pin}}}}; default {provisioning.DEFAULT_MESSAGE_TEXT!r}.",
        )
        voice.add_argument("--voice-name", help="Text-to-speech voice, e.g. Joanna; Infobip's standard if unset.")
        voice.add_argument("--speech-rate", type=float, help="Reading pace, 0.5 to 2 (Infobip's default 1).")
        voice.add_argument("--repeat-dtmf", metavar="KEYS", help="Keys that replay the message, e.g. 1#.")
        mode = parser.add_argument_group("mode")
        mode.add_argument(
            "--dry-run", action="store_true", help="Show what would be created or changed; only GET requests."
        )
        mode.add_argument(
            "--check",
            action="store_true",
            help=f"Exit {NOT_COMPLIANT} listing where Infobip is looser than the local policy; only GET requests.",
        )
        mode.add_argument(
            "--write-env", metavar="PATH", help="Write the IDs into this .env file, keeping every other line."
        )
        mode.add_argument("--send-test-pin", metavar="NUMBER", help="After provisioning, send one PIN to this number.")

    def handle(self, *args: Any, **options: Any) -> None:
        self.base_url = ""
        try:
            self._handle(options)
        except ProviderError as err:
            # The URL is not a secret and tells a typo in it from a refused key.
            raise CommandError(f"{err} [{self.base_url}]") from err
        except (provisioning.ProvisioningError, InvalidBaseUrl) as err:
            raise CommandError(str(err)) from err
        except OSError as err:  # writing the .env file
            raise CommandError(f"cannot write {options['write_env']}: {err.strerror or err}") from err

    # -- steps -----------------------------------------------------------------

    def _handle(self, options: dict[str, Any]) -> None:
        if options["check"] and (options["dry_run"] or options["write_env"] or options["send_test_pin"]):
            raise CommandError("--check cannot be combined with --dry-run, --write-env or --send-test-pin")
        if options["dry_run"] and options["send_test_pin"]:
            raise CommandError("--send-test-pin cannot be combined with --dry-run")
        policy_errors = check_policy() + check_webotp_domain()
        if policy_errors:
            raise CommandError(f"fix the OTP settings first: {policy_errors[0].msg}")
        configured = otp_settings.PROVIDER_OPTIONS
        voice_msg_id = str(configured.get("voice_message_id") or "")
        desired = provisioning.desired_configuration(
            name=options["name"],
            pin_attempts=options["pin_attempts"],
            pin_ttl=options["pin_ttl"],
            verify_pin_limit=options["verify_pin_limit"],
            send_pin_per_application_limit=options["send_pin_per_application_limit"],
            send_pin_per_phone_number_limit=options["send_pin_per_phone_number_limit"],
            message_text=options["message_text"],
            voice_message_text=options["voice_message_text"],
            pin_length=options["pin_length"],
            sender_id=options["sender_id"],
            language=options["language"],
            voice_name=options["voice_name"],
            speech_rate=options["speech_rate"],
            repeat_dtmf=options["repeat_dtmf"],
            # A configured voice template is kept in line with the policy too.
            separate_voice=bool(voice_msg_id),
        )
        phone = None
        if options["send_test_pin"]:  # refuse a bad number before changing anything
            try:
                phone = normalize_phone(options["send_test_pin"], otp_settings.DEFAULT_REGION)
            except InvalidPhoneNumber as err:
                raise CommandError(f"--send-test-pin: {err}") from err
        connection = self._connection(configured, options)
        client = InfobipManagementClient(**connection)
        self.base_url = client.base_url
        app_id = str(configured.get("application_id") or "")
        msg_id = str(configured.get("message_id") or "")

        if options["check"]:
            self._check(client, desired, app_id, msg_id, voice_msg_id)
            return
        outcome = provisioning.provision(
            client,
            desired,
            application_id=app_id,
            message_id=msg_id,
            voice_message_id=voice_msg_id,
            dry_run=options["dry_run"],
        )
        self._report(outcome, desired.name, dry_run=options["dry_run"])
        if options["dry_run"]:
            if options["write_env"]:
                self.stdout.write(f"Dry run: {options['write_env']} not written.")
            return
        new_app_id, new_msg_id = outcome.application.ident, outcome.template.ident
        new_voice_id = outcome.voice.ident if outcome.voice else None
        if not new_app_id or not new_msg_id or (outcome.voice and not new_voice_id):
            raise CommandError("Infobip did not return the application and template IDs")  # a real run always does
        values = {provisioning.ENV_APP_ID: new_app_id, provisioning.ENV_MSG_ID: new_msg_id}
        if new_voice_id:
            values[provisioning.ENV_VOICE_MSG_ID] = new_voice_id
        for key, value in values.items():
            self.stdout.write(f"{key}={value}")
        if options["write_env"]:
            written = provisioning.write_env(options["write_env"], values)
            self.stdout.write(f"{'Wrote' if written else 'Already current:'} {options['write_env']}")
        if phone:
            delivered = provisioning.send_test_pin(connection, new_app_id, new_msg_id, phone)
            if not delivered:
                raise CommandError(f"Infobip accepted the test PIN for {mask_phone(phone)} but did not send it")
            self.stdout.write(f"Test PIN sent to {mask_phone(phone)}.")

    def _connection(self, configured: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
        env_name = options["api_key_env"]
        if env_name:
            api_key = os.environ.get(env_name, "").strip()
            if not api_key:
                raise CommandError(f"the environment variable {env_name} is empty or unset")
        else:
            api_key = str(configured.get("api_key") or "").strip()
            if not api_key:
                raise CommandError(
                    "no Infobip API key: set OTP['PROVIDER_OPTIONS']['api_key'] "
                    "(INFOBIP_API_KEY) or use --api-key-env NAME"
                )
        base_url = options["base_url"] or configured.get("base_url")
        if not base_url:
            raise CommandError(
                "no Infobip base URL: set OTP['PROVIDER_OPTIONS']['base_url'] (INFOBIP_BASE_URL) or use --base-url"
            )
        return {
            "api_key": api_key,
            "base_url": base_url,
            "connect_timeout": configured.get("connect_timeout", DEFAULT_CONNECT_TIMEOUT),
            "read_timeout": configured.get("read_timeout", DEFAULT_READ_TIMEOUT),
        }

    def _check(
        self, client: InfobipManagementClient, desired: provisioning.Desired, app_id: str, msg_id: str, voice_id: str
    ) -> None:
        problems = provisioning.check_compliance(
            client, desired, application_id=app_id, message_id=msg_id, voice_message_id=voice_id
        )
        if not problems:
            self.stdout.write("Infobip complies with the local policy.")
            return
        for problem in problems:
            self.stdout.write(f"- {problem}")
        plural = "s" if len(problems) != 1 else ""
        raise CommandError(
            f"Infobip does not comply with the local policy ({len(problems)} difference{plural})",
            returncode=NOT_COMPLIANT,
        )

    def _report(self, outcome: provisioning.Outcome, name: str, *, dry_run: bool) -> None:
        verbs = {
            "create": "would create" if dry_run else "created",
            "update": "would update" if dry_run else "updated",
            "none": "up to date",
        }
        labels = {"application": f"Application {name!r}", "template": "SMS template", "voice": "Voice template"}
        for step in outcome.steps:
            label = labels[step.kind] + (f" {step.ident}" if step.ident else "")
            self.stdout.write(f"{label}: {verbs[step.action]}")
            for change in step.changes:
                if step.action == "create":
                    self.stdout.write(f"  {change.field}: {_show(change.desired)}")
                else:
                    self.stdout.write(f"  {change.field}: {_show(change.current)} -> {_show(change.desired)}")
        if not outcome.changed:
            self.stdout.write("Infobip is up to date.")
        elif dry_run:
            self.stdout.write("Dry run: nothing was changed.")
