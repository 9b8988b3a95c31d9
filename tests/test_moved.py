"""Names that moved into folders still import from their old path for one release, with a warning."""

import importlib

import pytest


@pytest.mark.parametrize(
    ("old", "new", "name"),
    [
        ("otp.responses", "otp.api.responses", "handler404"),
        ("otp.responses", "otp.api.responses", "otp_exception_handler"),
        ("otp.permissions", "otp.api.permissions", "PhoneVerified"),
        ("otp.openapi", "otp.api.openapi", "strip_trailing_slashes"),
    ],
)
def test_an_old_path_warns_and_gives_the_same_object(old, new, name):
    with pytest.warns(DeprecationWarning, match=rf"{old}\.{name} moved to {new}\.{name}"):
        value = getattr(importlib.import_module(old), name)
    assert value is getattr(importlib.import_module(new), name)


def test_a_name_the_new_module_lacks_is_an_attribute_error_naming_the_old_path():
    with pytest.raises(AttributeError, match="module 'otp.permissions' has no attribute 'Nothing'"):
        importlib.import_module("otp.permissions").Nothing  # noqa: B018


def test_django_resolves_an_old_dotted_path_in_settings():
    from django.utils.module_loading import import_string

    with pytest.warns(DeprecationWarning):
        assert import_string("otp.responses.handler500") is import_string("otp.api.responses.handler500")
