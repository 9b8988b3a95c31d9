"""The forms of the HTML pages: the phone number, then the code.

They only validate and normalise, with the validators the API uses; every
rule of sending and verifying is applied by :mod:`otp.flows`.
"""

from __future__ import annotations

import unicodedata
from typing import Any

import phonenumbers
from django import forms
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from otp.conf import otp_settings
from otp.exceptions import InvalidInput
from otp.validators.phones import MAX_RAW_LENGTH, normalize_phone
from otp.validators.pins import validate_pin


class TelInput(forms.TextInput):
    """``<input type="tel">``: the phone keypad on a phone, and the browser's saved number."""

    input_type = "tel"


class PhoneForm(forms.Form):
    """The number to send a code to: international, or national in ``OTP["DEFAULT_REGION"]``."""

    phone_number = forms.CharField(
        label=_("Phone number"),
        max_length=MAX_RAW_LENGTH,
        widget=TelInput(attrs={"autocomplete": "tel", "autofocus": True}),
        error_messages={"required": _("Enter your phone number."), "max_length": _("Enter a valid phone number.")},
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["phone_number"].help_text = phone_help_text(otp_settings.DEFAULT_REGION)

    def clean_phone_number(self) -> str:
        try:
            return normalize_phone(self.cleaned_data["phone_number"], otp_settings.DEFAULT_REGION)
        except InvalidInput as err:
            # The API's messages name its field (phoneNumber); a person gets one plain sentence,
            # and the help text says which format.
            raise forms.ValidationError(gettext("Enter a valid phone number."), code=err.code) from err


def phone_help_text(region: str | None) -> str:
    """What the phone field accepts: a national example from ``region`` when there is one."""
    example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE) if region else None
    if example is None:
        return gettext("Include the country code, starting with +.")
    national = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.NATIONAL)
    return gettext("Include the country code, starting with +, or enter a national number such as %(example)s.") % {
        "example": national
    }


class CodeForm(forms.Form):
    """The code the visitor received: exactly ``OTP["PIN_LENGTH"]`` digits."""

    code = forms.CharField(
        label=_("Verification code"),
        # One text field: type=number drops leading zeros and spins on scroll,
        # one box per digit breaks autofill and paste.
        widget=forms.TextInput(
            attrs={
                "inputmode": "numeric",
                "autocomplete": "one-time-code",
                "pattern": "[0-9]*",
                "autofocus": True,
            }
        ),
        error_messages={"required": _("Enter the code we sent you.")},
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        length = otp_settings.PIN_LENGTH
        field = self.fields["code"]
        field.widget.attrs["maxlength"] = str(length)
        field.help_text = gettext("The code has %(length)d digits.") % {"length": length}

    def clean_code(self) -> str:
        # Spaces typed between digits and full-width digits are the same code;
        # anything else must be exactly the PIN's ASCII digits, as for the API.
        typed = "".join(unicodedata.normalize("NFKC", self.cleaned_data["code"]).split())
        length = otp_settings.PIN_LENGTH
        try:
            return validate_pin(typed, length)
        except InvalidInput as err:
            message = gettext("Enter the %(length)d digits of the code.") % {"length": length}
            raise forms.ValidationError(message, code=err.code) from err
