"""Input validation and normalisation for the API; no business rules."""

from __future__ import annotations

import copy
from typing import Any

from django.utils.functional import lazy
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from otp.api.openapi import extend_schema_field
from otp.conf import otp_settings
from otp.exceptions import InvalidInput, InvalidPhoneNumber
from otp.validators.phones import normalize_phone
from otp.validators.pins import validate_pin
from otp.validators.purposes import validate_channel, validate_purpose

_APP_CODES = {InvalidPhoneNumber.code}


def _format_required(field: str) -> str:
    return gettext("%(field)s is required.") % {"field": field}


# Translated when shown, in the language of the request that fails.
_required_message = lazy(_format_required, str)


class _ValidatedField(serializers.Field):
    """A field whose value must be a JSON string accepted by ``validate``."""

    def __init__(self, *, public_name: str, **kwargs: Any) -> None:
        required = _required_message(public_name)
        kwargs.setdefault("error_messages", {"required": required, "null": required})
        super().__init__(**kwargs)

    def validate(self, value: Any) -> str:
        raise NotImplementedError

    def to_internal_value(self, data: Any) -> str:
        try:
            return self.validate(data)
        except InvalidInput as err:
            raise serializers.ValidationError(str(err), code=err.code) from err

    def to_representation(self, value: str) -> str:
        return value


@extend_schema_field(
    {
        "type": "string",
        "minLength": 1,
        "maxLength": 64,
        "example": "+14155552671",
        "description": (
            "E.164, or a formatted number: one leading +, digits, spaces, '-', '.' and parentheses"
            " (full-width forms too); without + the site's default region applies."
        ),
    }
)
class PhoneNumberField(_ValidatedField):
    def validate(self, value: Any) -> str:
        return normalize_phone(value, otp_settings.DEFAULT_REGION)


@extend_schema_field(
    {
        "type": "string",
        "pattern": "^[0-9]+$",
        "example": "123456",
        "description": "Exactly PIN_LENGTH ASCII digits (6 by default).",
    }
)
class PinField(_ValidatedField):
    def validate(self, value: Any) -> str:
        return validate_pin(value, otp_settings.PIN_LENGTH)


@extend_schema_field(
    {
        "type": "string",
        "pattern": "^[a-z0-9][a-z0-9_-]{0,31}$",
        "example": "login",
        "description": "What the code is for; a code verifies only for its purpose.",
    }
)
class PurposeField(_ValidatedField):
    def validate(self, value: Any) -> str:
        return validate_purpose(value)


@extend_schema_field({"type": "string", "enum": ["sms", "voice"], "default": "sms"})
class ChannelField(_ValidatedField):
    def validate(self, value: Any) -> str:
        return validate_channel(value)


class _StrictSerializer(serializers.Serializer):
    """Refuses bodies that are not objects and fields it does not know."""

    default_error_messages = {
        "invalid": _("Request body must be a JSON object."),
        "null": _("Request body must be a JSON object."),
    }

    def get_fields(self) -> dict[str, serializers.Field]:
        # DRF deep-copies the declared fields for every serializer, which
        # re-runs each field's __init__; these fields keep no state but what
        # bind() sets, so a shallow copy per request is enough.
        return {name: copy.copy(field) for name, field in self._declared_fields.items()}

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(self.initial_data) - set(self.fields))
        if unknown:
            raise serializers.ValidationError(_("Unknown field: %(field)s.") % {"field": unknown[0][:40]})
        return attrs


@extend_schema_field({"type": "string", "maxLength": 4096, "description": "Bot-friction token, when the site asks."})
class ChallengeTokenField(_ValidatedField):
    def validate(self, value: Any) -> str:
        if not isinstance(value, str) or len(value) > 4096:
            raise InvalidInput(_("challengeToken must be a string."))
        return value


class SendCodeSerializer(_StrictSerializer):
    phoneNumber = PhoneNumberField(public_name="phoneNumber")  # noqa: N815 (wire name)
    purpose = PurposeField(public_name="purpose", required=False)
    channel = ChannelField(public_name="channel", required=False)
    challengeToken = ChallengeTokenField(public_name="challengeToken", required=False)  # noqa: N815


class VerifyCodeSerializer(_StrictSerializer):
    phoneNumber = PhoneNumberField(public_name="phoneNumber")  # noqa: N815
    pin = PinField(public_name="pin")
    purpose = PurposeField(public_name="purpose", required=False)


def first_error(errors: Any) -> tuple[str, str]:
    """The first human message of a DRF ``errors`` structure, and the app's code for it."""
    while isinstance(errors, (dict, list)):
        if not errors:
            return str(_("Invalid request.")), InvalidInput.code
        errors = next(iter(errors.values())) if isinstance(errors, dict) else errors[0]
    code = getattr(errors, "code", None)
    # The app's own codes pass through; DRF's ("required", "null"...) are generic.
    return str(errors), code if code in _APP_CODES else InvalidInput.code
