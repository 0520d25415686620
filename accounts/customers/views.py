"""Customer account pages beside allauth's: claiming a meter with the code on its display,
the settings overview, and the deletion request."""

from __future__ import annotations

from allauth.account.views import PasswordResetView
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from accounts.models import AccountDeletionRequest, ClaimStatus, MeterClaim
from audit.caps import CapExceeded
from audit.models import Outcome
from audit.services import record
from readings.selectors import customer_meters

from . import limits
from .adapters import next_step_url
from .forms import (
    PAUSED,
    TOO_MANY,
    ClaimCodeForm,
    DeletionRequestForm,
    RequestClaimForm,
)
from .services import claims_locked, request_account_deletion, request_claim, verify_claim

CODE_SENT = (
    "If {number} is a meter we can reach, its display will show an 8-digit code within a few "
    "minutes. The code works for 30 minutes."
)
WRONG_CODE = "That code is not right or has expired. Check the number, or ask for a new code."
LOCKED = (
    "Too many wrong codes. Claiming meters is locked on this account for a day; "
    "contact us if you need help."
)


def customer_login_required(view):
    return login_required(login_url="account_login")(never_cache(view))


@customer_login_required
@require_http_methods(["GET", "POST"])
def claim(request: HttpRequest) -> HttpResponse:
    user = request.user
    pending = (
        MeterClaim.objects.filter(
            user=user,
            status__in=[ClaimStatus.REQUESTED, ClaimStatus.SENT, ClaimStatus.UNDELIVERABLE],
        )
        .order_by("-created_at")
        .first()
    )
    initial = {"meter_number": pending.meter_number} if pending else {}
    request_form = RequestClaimForm(initial=initial, prefix="request")
    code_form = ClaimCodeForm(initial=initial, prefix="code")
    if request.method == "POST" and request.POST.get("action") == "request":
        request_form = RequestClaimForm(request.POST, prefix="request")
        if request_form.is_valid():
            number = request_form.cleaned_data["meter_number"]
            if claims_locked(user):
                request_form.add_error(None, LOCKED)
            elif limits.hit("claim_per_user", str(user.pk)):
                record(
                    "customer.claim_limited",
                    actor=user,
                    target=f"meter:{number}",
                    outcome=Outcome.DENIED,
                )
                request_form.add_error(None, TOO_MANY)
            else:
                request_claim(user, number, now=timezone.now())
                messages.info(request, CODE_SENT.format(number=number))
                return redirect("customer_claim")
    elif request.method == "POST":
        code_form = ClaimCodeForm(request.POST, prefix="code")
        if code_form.is_valid():
            result = verify_claim(
                user,
                code_form.cleaned_data["meter_number"],
                code_form.cleaned_data["code"],
                now=timezone.now(),
            )
            if result.ok:
                messages.success(request, "Your meter is linked to your account.")
                return redirect(next_step_url(user))
            code_form.add_error("code", LOCKED if result.locked else WRONG_CODE)
    return render(
        request,
        "accounts/customer/claim.html",
        {"request_form": request_form, "code_form": code_form, "pending": pending},
    )


@customer_login_required
def account_settings(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "accounts/customer/settings.html",
        {
            "meters": customer_meters(request.user),
            "deletion": AccountDeletionRequest.objects.filter(
                user=request.user, processed_at__isnull=True
            ).first(),
        },
    )


@customer_login_required
@require_http_methods(["GET", "POST"])
def delete_account(request: HttpRequest) -> HttpResponse:
    form = DeletionRequestForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        request_account_deletion(
            request.user, reason=form.cleaned_data["reason"], now=timezone.now()
        )
        messages.success(
            request,
            "We have your request. We will close your account within 30 days and e-mail you.",
        )
        return redirect("customer_settings")
    return render(request, "accounts/customer/delete.html", {"form": form})


class PasswordResetPausableView(PasswordResetView):
    """allauth's reset page; over the fleet-wide reset cap (S12) the form says the service is
    paused instead of sending anything (the form's save raises before any mail)."""

    def form_valid(self, form) -> HttpResponse:
        try:
            return super().form_valid(form)
        except CapExceeded:
            form.add_error(None, PAUSED)
            return self.form_invalid(form)
