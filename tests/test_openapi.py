"""The OpenAPI schema, and schemathesis fuzzing the endpoints against it."""

from __future__ import annotations

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import negative_data_rejection, positive_data_acceptance
from schemathesis.generation import GenerationMode

from otp.providers import locmem

pytestmark = pytest.mark.django_db


def test_schema_documents_every_answer(api):
    response = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    assert set(schema["paths"]) >= {"/send-otp", "/resend-otp", "/verify-otp"}
    verify = schema["paths"]["/verify-otp"]["post"]
    assert set(verify["responses"]) == {"200", "400", "401", "403", "405", "413", "415", "429", "500", "503"}
    send = schema["paths"]["/send-otp"]["post"]
    assert "401" not in send["responses"] and "200" in send["responses"]
    components = schema["components"]["schemas"]
    assert set(components["VerifyCodeRequest"]["required"]) == {"phoneNumber", "pin"}
    assert set(components["Verified"]["properties"]) == {"message", "verificationToken"}
    assert set(components["Error"]["properties"]) == {"error", "code"}


def test_docs_page_opens(api):
    response = api.get("/api/docs/")
    assert response.status_code == 200 and b"swagger" in response.content.lower()


@pytest.fixture(autouse=True)
def _keep_the_test_connection():
    """Like Django's test client: requests must not close the test's transaction."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


OPERATIONS = [("/send-otp", "POST"), ("/resend-otp", "POST"), ("/verify-otp", "POST")]


@pytest.mark.slow
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["positive", "negative"])
@pytest.mark.parametrize(("path", "method"), OPERATIONS)
def test_fuzzed_requests_never_fail_the_contract(path, method, mode):
    operation = schemathesis.openapi.from_wsgi("/api/schema/", WSGIHandler())[path][method]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=40,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    def check(case):
        sent_before = len(locmem.outbox)
        # No positive-data check: no schema can say which numbers libphonenumber accepts.
        # Negative data is checked below, since 413 (too large) is a rejection too.
        response = case.call_and_validate(excluded_checks=[positive_data_acceptance, negative_data_rejection])
        assert response.status_code < 500
        if mode is GenerationMode.NEGATIVE:
            assert response.status_code in (400, 413, 415), case.body
        assert set(response.json()) <= {"message", "error", "code", "verificationToken"}
        if response.status_code != 200:
            assert len(locmem.outbox) == sent_before  # refused input never reached the provider

    check()
