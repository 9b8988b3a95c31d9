"""The HTML pages of the flow: the number, then the code (with a resend button), then the site's next page.

Server-rendered and usable without JavaScript; forms are CSRF-protected
whether or not the site runs the CSRF middleware. Sending and verifying go
through :mod:`otp.flows`, as the API's do, so every limit counts these pages
in the same buckets. A refusal re-renders the page with the reason as a form
error (with the wait for a limit or an outage, also in ``Retry-After``),
never an error page.
"""

from __future__ import annotations

import logging
from math import ceil
from typing import Any, ClassVar

import phonenumbers
from django import forms
from django.db import InterfaceError, OperationalError, transaction
from django.http import HttpRequest, HttpResponse, HttpResponseBase, HttpResponseRedirect
from django.shortcuts import redirect, resolve_url
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.translation import gettext, ngettext
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.generic import FormView, TemplateView

from otp import flows
from otp.conf import otp_settings
from otp.exceptions import DestinationNotAllowed, HttpAnswer, OtpConfigurationError, OtpError, VerificationFailed
from otp.providers.base import SMS
from otp.web import session
from otp.web.forms import CodeForm, PhoneForm

logger = logging.getLogger(__name__)

# Statuses a refused form answers with, for monitoring and clients that read
# them; a page with field errors stays a 200, as Django's forms do.
_WAIT_STATUSES = (429, 503)


class OtpPageMixin:
    """What every page of the flow shares: its protections and its base template."""

    request: HttpRequest

    @classmethod
    def as_view(cls, **initkwargs: Any) -> Any:
        view = super().as_view(**initkwargs)  # type: ignore[misc]
        # A send commits its row before calling the provider, so the pages never
        # run inside a site's ATOMIC_REQUESTS transaction (as the API's views).
        return transaction.non_atomic_requests(never_cache(csrf_protect(view)))

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context: dict[str, Any] = super().get_context_data(**kwargs)  # type: ignore[misc]
        context["base_template"] = otp_settings.WEB_BASE_TEMPLATE
        return context

    def page_url(self, name: str) -> str:
        """The URL of another page of the flow, in the namespace this page was reached under."""
        match = self.request.resolver_match
        return reverse(f"otp_web:{name}", current_app=match.namespace if match else None)


def refusal_text(answer: HttpAnswer) -> str:
    """The message a refused send or verify shows: the API's message, and the wait if there is one."""
    message = answer.public_message()
    wait = answer.retry_after_seconds()
    if not wait:
        return message
    again = gettext("You can try again in %(duration)s.") % {"duration": duration_text(wait)}
    return f"{message} {again}"


def duration_text(seconds: int) -> str:
    """``seconds`` as a person reads a wait: seconds under a minute, else whole minutes rounded up."""
    if seconds < 60:
        return ngettext("%(count)d second", "%(count)d seconds", seconds) % {"count": seconds}
    minutes = ceil(seconds / 60)
    return ngettext("%(count)d minute", "%(count)d minutes", minutes) % {"count": minutes}


def display_phone(e164: str) -> str:
    """The number as people write it internationally: ``+1 415-555-2671``."""
    return phonenumbers.format_number(phonenumbers.parse(e164), phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def _answer(error: Exception) -> HttpAnswer | None:
    """What a refusal answers, or None for an error that is a bug (it stays a 500)."""
    if isinstance(error, (OperationalError, InterfaceError)):
        return flows.database_unavailable(error)
    if isinstance(error, HttpAnswer) and error.http_status is not None:
        if isinstance(error, OtpConfigurationError):
            logger.error("OTP configuration error: %s", error)
        return error
    return None


#: The errors a send or verify answers with a page rather than a 500.
REFUSALS = (OtpError, OtpConfigurationError, OperationalError, InterfaceError)


class FlowFormView(OtpPageMixin, FormView):
    """A page of the flow with a form, and the refusals of the service shown on it."""

    #: The POST field holding the token of ``OTP["SEND_CHALLENGE_VERIFIER"]`` (a CAPTCHA widget's).
    challenge_field: ClassVar[str] = "challengeToken"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["errors"] = error_summary(context.get("form"), context.get("resend_form"))
        return context

    def challenge_token(self) -> str | None:
        return self.request.POST.get(self.challenge_field) or None

    def refused(self, form: forms.Form, error: Exception, field: str | None = None) -> HttpResponse:
        """The page again, with the refusal as an error of ``field`` (None: of the whole form)."""
        answer = _answer(error)
        if answer is None:
            raise error
        form.add_error(field, refusal_text(answer))
        return self.render_refusal(answer, form=form)

    def render_refusal(self, answer: HttpAnswer, **context: Any) -> HttpResponse:
        status = answer.http_status if answer.http_status in _WAIT_STATUSES else 200
        response = self.render_to_response(self.get_context_data(**context), status=status)
        wait = answer.retry_after_seconds()
        if status != 200 and wait is not None:
            response["Retry-After"] = str(wait)
        return response


class StartView(FlowFormView):
    """Step one: the phone number. A code is sent, then the visitor goes to the code page.

    Keyword arguments of ``as_view()`` (or attributes of a subclass) set what
    the codes are for and how they travel::

        path("verify-phone/", StartView.as_view(purpose="phone_change"), name="start")
    """

    template_name = "otp/web/start.html"
    form_class = PhoneForm
    #: The purpose of the codes this page sends (None: ``OTP["DEFAULT_PURPOSE"]``).
    purpose: ClassVar[str | None] = None
    #: ``"sms"`` or ``"voice"``; a resend uses the same.
    channel: ClassVar[str] = SMS

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        source = self.request.POST if self.request.method == "POST" else self.request.GET
        context["next"] = source.get("next", "")
        context["form_action"] = self.request.path
        return context

    def form_valid(self, form: PhoneForm) -> HttpResponse:
        request = self.request
        try:
            flows.begin_request(request)
            attempt = flows.send_for_request(
                request,
                form.cleaned_data["phone_number"],
                purpose=self.purpose,
                channel=self.channel,
                challenge_token=self.challenge_token(),
            )
        except REFUSALS as error:
            field = "phone_number" if isinstance(error, DestinationNotAllowed) else None
            return self.refused(form, error, field)
        session.start_pending(request, attempt.phone, attempt.purpose, self.channel, request.POST.get("next", ""))
        return HttpResponseRedirect(self.page_url("verify"))


class ResendForm(forms.Form):
    """The resend button's form: no field, but errors of its own."""

    #: The element the error summary links the form's errors to: the button.
    summary_target = "otp-resend"


def error_summary(*page_forms: forms.Form | None) -> list[dict[str, str]]:
    """Every error of the page's forms, each with the id of the element it is about ("" for none)."""
    errors = []
    for form in page_forms:
        if form is None:
            continue
        target = getattr(form, "summary_target", "")
        errors += [{"message": str(message), "target": target} for message in form.non_field_errors()]
        for field in form:
            errors += [{"message": str(message), "target": field.id_for_label} for message in field.errors]
    return errors


class VerifyView(FlowFormView):
    """Step two: the code sent to the pending number, and a button to send it again.

    Without a pending verification (none started, or its code expired) the
    visitor is sent back to the start page.
    """

    template_name = "otp/web/verify.html"
    form_class = CodeForm
    pending: session.Pending

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        pending = session.get_pending(request)
        if pending is None:
            return redirect(self.page_url("start"))
        self.pending = pending
        return super().dispatch(request, *args, **kwargs)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        pending = self.pending
        wait = flows.seconds_until_send(pending.phone)
        start_url = self.page_url("start")
        context.update(
            phone=display_phone(pending.phone),
            notice=session.take_notice(self.request, pending),
            form_action=self.page_url("verify"),
            resend_action=self.page_url("resend"),
            start_url=f"{start_url}?{urlencode({'next': pending.next_url})}" if pending.next_url else start_url,
            resend_wait=wait,
            resend_wait_text=duration_text(wait) if wait else "",
        )
        context.setdefault("resend_form", ResendForm())
        return context

    def form_valid(self, form: CodeForm) -> HttpResponse:
        request, pending = self.request, self.pending
        try:
            flows.begin_request(request)
            verification = flows.verify_for_request(
                request, pending.phone, form.cleaned_data["code"], purpose=pending.purpose
            )
        except VerificationFailed:
            # One message for every failure, as the API's 401: wrong, expired, used...
            form.add_error("code", gettext("Invalid or expired code."))
            return self.form_invalid(form)
        except REFUSALS as error:
            return self.refused(form, error)
        session.complete(request, verification.token)
        return HttpResponseRedirect(self.next_page(pending.next_url))

    def next_page(self, next_url: str) -> str:
        """``next_url`` if it is a page of this site, else ``OTP["WEB_SUCCESS_URL"]``."""
        request = self.request
        if next_url and url_has_allowed_host_and_scheme(
            next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        ):
            return next_url
        return resolve_url(otp_settings.WEB_SUCCESS_URL)


class ResendView(VerifyView):
    """The resend button: the code in flight delivered again, under the send limits and cooldown."""

    http_method_names = ["post"]

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        pending = self.pending
        try:
            flows.begin_request(request)
            flows.send_for_request(
                request,
                pending.phone,
                purpose=pending.purpose,
                channel=pending.channel,
                challenge_token=self.challenge_token(),
                resend=True,
            )
        except REFUSALS as error:
            answer = _answer(error)
            if answer is None:
                raise
            resend_form = ResendForm(data={})
            resend_form.add_error(None, refusal_text(answer))
            return self.render_refusal(answer, form=CodeForm(), resend_form=resend_form)
        session.renew_pending(request, pending)
        return HttpResponseRedirect(self.page_url("verify"))


class DoneView(OtpPageMixin, TemplateView):
    """The default page after a verification (``OTP["WEB_SUCCESS_URL"]``): it reads the number, once."""

    template_name = "otp/web/done.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        proof = session.pop_verified_phone(self.request)
        context["verified"] = proof
        context["phone"] = display_phone(proof.phone) if proof else ""
        context["start_url"] = self.page_url("start")
        return context
