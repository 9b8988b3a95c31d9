"""Thin DRF views: validate the input, call one request flow (:mod:`otp.flows`), answer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from django.db import transaction
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from otp import flows
from otp.api.openapi import send_schema, verify_schema
from otp.api.parsers import BoundedJSONParser
from otp.api.responses import otp_exception_handler
from otp.api.serializers import SendCodeSerializer, VerifyCodeSerializer, first_error
from otp.exceptions import InvalidInput

SENT_MESSAGE = _("OTP sent successfully.")
VERIFIED_MESSAGE = _("OTP verified successfully.")


class OtpAPIView(APIView):
    """Base of the app's endpoints: JSON in, JSON out, errors as ``{"error": ...}``."""

    http_method_names = ["post", "options"]
    permission_classes = [AllowAny]
    parser_classes = [BoundedJSONParser]
    renderer_classes = [JSONRenderer]
    serializer_class: ClassVar[type[serializers.Serializer]]

    @classmethod
    def as_view(cls, **initkwargs: Any) -> Any:
        # The send must commit its row before calling the provider, so the
        # app's views never run inside a site's ATOMIC_REQUESTS transaction.
        # Marked once here: method_decorator on dispatch re-wraps the method
        # on every request.
        return transaction.non_atomic_requests(super().as_view(**initkwargs))

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        # The request id first, so that a refused X-Forwarded-For is logged
        # and answered with it; the refusal comes before DRF's throttles count.
        request.otp_request_id = flows.begin_request(request)  # type: ignore[attr-defined]
        super().initial(request, *args, **kwargs)

    def finalize_response(self, request: Request, response: Response, *args: Any, **kwargs: Any) -> Response:
        request_id = getattr(request, "otp_request_id", None)
        if request_id:
            response["X-Request-ID"] = request_id
        return super().finalize_response(request, response, *args, **kwargs)

    def get_exception_handler(self) -> Callable[[Exception, dict[str, Any]], Response]:
        return otp_exception_handler

    def validated(self, request: Request) -> dict[str, Any]:
        """The normalised input; bad input counts against nothing."""
        if not isinstance(request.data, dict):
            raise InvalidInput(str(_("Request body must be a JSON object.")))
        serializer = self.serializer_class(data=request.data)
        if not serializer.is_valid():
            message, code = first_error(serializer.errors)
            error = InvalidInput(message)
            error.code = code
            raise error
        return serializer.validated_data


class SendCodeView(OtpAPIView):
    serializer_class = SendCodeSerializer
    #: Deliver the code in flight again instead of a new one (the resend view).
    resend: ClassVar[bool] = False

    @send_schema(SendCodeSerializer, "Send a PIN")
    def post(self, request: Request) -> Response:
        data = self.validated(request)
        flows.send_for_request(
            request,
            data["phoneNumber"],
            purpose=data.get("purpose"),
            channel=data.get("channel", "sms"),
            challenge_token=data.get("challengeToken"),
            resend=self.resend,
        )
        return Response({"message": str(SENT_MESSAGE)})


class ResendCodeView(SendCodeView):
    resend = True

    @send_schema(SendCodeSerializer, "Deliver the PIN in flight again, or send a new one")
    def post(self, request: Request) -> Response:
        return super().post(request)


class VerifyCodeView(OtpAPIView):
    serializer_class = VerifyCodeSerializer

    @verify_schema(VerifyCodeSerializer)
    def post(self, request: Request) -> Response:
        data = self.validated(request)
        verification = flows.verify_for_request(request, data["phoneNumber"], data["pin"], purpose=data.get("purpose"))
        return Response({"message": str(VERIFIED_MESSAGE), "verificationToken": verification.token})
