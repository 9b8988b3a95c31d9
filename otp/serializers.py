"""Input validation and normalisation for the API; no business rules."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from otp.conf import otp_settings
from otp.exceptions import InvalidInput
from otp.phones import normalize_phone
from otp.pins import validate_pin
from otp.purposes import validate_channel, validate_purpose


class _ValidatedField(serializers.Field):
    """A field whose value must be a JSON string accepted by ``validate``."""

    def __init__(self, *, public_name: str, **kwargs: Any) -> None:
        kwargs.setdefault("error_messages", {
            "required": f"{public_name} is required.",
            "null": f"{public_name} is required.",
        })
        super().__init__(**kwargs)

    def validate(self, value: Any) -> str:
        raise NotImplementedError

    def to_internal_value(self, data: Any) -> str:
        try:
            return self.validate(data)
        except InvalidInput as err:
            raise serializers.ValidationError(str(err)) from err

    def to_representation(self, value: str) -> str:
        return value


class PhoneNumberField(_ValidatedField):
    def validate(self, value: Any) -> str:
        return normalize_phone(value, otp_settings.DEFAULT_REGION)


class PinField(_ValidatedField):
    def validate(self, value: Any) -> str:
        return validate_pin(value, otp_settings.PIN_LENGTH)


class PurposeField(_ValidatedField):
    def validate(self, value: Any) -> str:
        return validate_purpose(value)


class ChannelField(_ValidatedField):
    def validate(self, value: Any) -> str:
        return validate_channel(value)


class _StrictSerializer(serializers.Serializer):
    """Refuses bodies that are not objects and fields it does not know."""

    default_error_messages = {
        "invalid": "Request body must be a JSON object.",
        "null": "Request body must be a JSON object.",
    }

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(self.initial_data) - set(self.fields))
        if unknown:
            raise serializers.ValidationError(f"Unknown field: {unknown[0][:40]}.")
        return attrs


class SendCodeSerializer(_StrictSerializer):
    phoneNumber = PhoneNumberField(public_name="phoneNumber")  # noqa: N815 (wire name)
    purpose = PurposeField(public_name="purpose", required=False)
    channel = ChannelField(public_name="channel", required=False)


class VerifyCodeSerializer(_StrictSerializer):
    phoneNumber = PhoneNumberField(public_name="phoneNumber")  # noqa: N815
    pin = PinField(public_name="pin")
    purpose = PurposeField(public_name="purpose", required=False)


def first_error(errors: Any) -> str:
    """The first human message of a DRF ``errors`` structure."""
    while isinstance(errors, (dict, list)):
        if not errors:
            return "Invalid request."
        errors = next(iter(errors.values())) if isinstance(errors, dict) else errors[0]
    return str(errors)
