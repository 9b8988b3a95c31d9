from django.contrib import admin
from django.http import JsonResponse
from django.urls import include, path
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.response import Response
from rest_framework.views import APIView

from otp.api.permissions import PhoneVerified
from otp.health import liveness, readiness
from otp.web.session import pop_verified_phone
from otp.web.views import StartView


@extend_schema(exclude=True)
class ProtectedView(APIView):
    """Stands in for a site's own view that requires a verified phone."""

    permission_classes = [PhoneVerified.for_purpose("phone_change")]

    def post(self, request):
        return Response({"phone": request.verified_phone})


@extend_schema(exclude=True)
class ProtectedAnyPurposeView(ProtectedView):
    permission_classes = [PhoneVerified]


def verified_phone_view(request):
    """Stands in for a site's own view after the HTML pages: it reads the verified number once."""
    proof = pop_verified_phone(request, purpose=request.GET.get("purpose"))
    return JsonResponse({"phone": proof.phone, "purpose": proof.purpose} if proof else {"phone": None})


urlpatterns = [
    path("healthz", readiness),
    path("healthz/live", liveness),
    path("healthz/ready", readiness),
    path("protected", ProtectedView.as_view()),
    path("protected-any-purpose", ProtectedAnyPurposeView.as_view()),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema")),
    path("admin/", admin.site.urls),
    # The HTML pages at a prefix, as a site includes them.
    path("phone/", include("otp.web.urls")),
    path("after-verification", verified_phone_view),
    # A site's own start page for one purpose; the other pages are the included ones.
    path("change-phone/", StartView.as_view(purpose="phone_change")),
    # ... and one whose CAPTCHA widget writes its token under its own name.
    path("turnstile-phone/", StartView.as_view(challenge_field="cf-turnstile-response")),
    path("", include("otp.urls")),
]

handler400 = "otp.api.responses.handler400"
handler403 = "otp.api.responses.handler403"
handler404 = "otp.api.responses.handler404"
handler500 = "otp.api.responses.handler500"
