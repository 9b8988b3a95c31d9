"""``/send-otp`` and ``/verify-otp`` doing nothing, as a Django view or a DRF view (``FLOOR_VIEW``)."""

import json
import os

from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from rest_framework.parsers import JSONParser
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from otp.health import healthz

ANSWER = {"message": "OTP sent successfully."}


class NoOpAPIView(APIView):
    permission_classes = [AllowAny]
    parser_classes = [JSONParser]
    renderer_classes = [JSONRenderer]

    def post(self, request: Request) -> Response:
        request.data  # noqa: B018  (parse the body, as the app's views do)
        return Response(ANSWER)


@csrf_exempt
@require_POST
def no_op_view(request: HttpRequest) -> JsonResponse:
    json.loads(request.body)
    return JsonResponse(ANSWER)


view = NoOpAPIView.as_view() if os.environ.get("FLOOR_VIEW", "drf") == "drf" else no_op_view
urlpatterns = [
    path("healthz", healthz),
    path("send-otp", view),
    path("verify-otp", view),
]
