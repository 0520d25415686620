"""The customer portal: dashboard, chart data, CSV export, consents and API tokens.

Every view that shows a meter's data resolves it through the viewer's own occupancy
(`selectors.customer_access`); another customer's or an unknown meter is the same 404.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from functools import wraps

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from audit.services import record
from fraud import selectors as fraud_selectors
from fraud import services as fraud_services
from fraud.forms import AbsenceForm
from readings import selectors
from readings.models import ApiToken, Source, TokenKind
from readings.retention import Policy

from . import tokens as token_services

logger = logging.getLogger(__name__)


def customer_required(view):
    """Signed in through the customer login; staff use the audited staff view instead."""

    @login_required(login_url="account_login")
    @never_cache
    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        return view(request, *args, **kwargs)

    return wrapped


def _access_or_404(request: HttpRequest, number: str) -> selectors.Access:
    access = selectors.customer_access(request.user, number)
    if access is None:
        raise Http404("No such meter on your account.")
    return access


@customer_required
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    meters = selectors.customer_meters(request.user)
    if len(meters) == 1:
        return redirect("portal:meter", number=meters[0].meter.number)
    return render(request, "accounts/portal/home.html", {"meters": meters})


@customer_required
@require_GET
def retention(request: HttpRequest) -> HttpResponse:
    """How long the customer's readings are kept, and each retention step that reached them."""
    policy = Policy.from_settings()
    return render(
        request,
        "accounts/portal/retention.html",
        {
            "policy": policy,
            "kept_from": policy.boundary(timezone.now()),
            "steps": selectors.retention_steps_for(request.user),
        },
    )


@customer_required
@require_GET
def meter_dashboard(request: HttpRequest, number: str) -> HttpResponse:
    access = _access_or_404(request, number)
    now = timezone.now()
    return render(
        request,
        "accounts/portal/dashboard.html",
        {
            "access": access,
            "meters": selectors.customer_meters(request.user),
            "current": selectors.current_reading(access),
            "comparisons": selectors.comparisons(access, now=now),
            "absence_form": AbsenceForm() if access.end is None else None,
            "absences": fraud_selectors.absences(access.meter.pk, since=now.date())
            if access.end is None
            else [],
            "charts": [
                ("hour", "Hourly use, last 48 hours"),
                ("day", "Daily use, last 60 days"),
                ("month", "Monthly use, last two years"),
            ],
        },
    )


class UsageQuery(forms.Form):
    """Parameters of the chart endpoints; anything else is a 400."""

    resolution = forms.ChoiceField(choices=[(r, r) for r in selectors.RESOLUTIONS])
    start = forms.DateField(required=False)
    end = forms.DateField(required=False)

    MAX_SPAN = {"hour": timedelta(days=7), "day": timedelta(days=400), "month": timedelta(days=800)}

    def _present_date(self, name: str) -> date | None:
        # A parameter given empty is not a date: "end=" is refused, not read as no end.
        if name in self.data and not self.cleaned_data.get(name):
            raise forms.ValidationError("Give a date (YYYY-MM-DD) or leave the parameter out.")
        return self.cleaned_data.get(name)

    def clean_start(self) -> date | None:
        return self._present_date("start")

    def clean_end(self) -> date | None:
        return self._present_date("end")

    def clean(self):
        data = super().clean()
        start, end, resolution = data.get("start"), data.get("end"), data.get("resolution")
        if (start is None) != (end is None):
            raise forms.ValidationError("Give both start and end, or neither.")
        if start and end and resolution:
            # Readings exist from 2000 on; far-off dates would only overflow the bucket maths.
            if start.year < 2000 or end.year > date.today().year + 1:
                raise forms.ValidationError("Dates must lie between 2000 and next year.")
            if start >= end:
                raise forms.ValidationError("start must be before end.")
            if end - start > self.MAX_SPAN[resolution]:
                raise forms.ValidationError(f"At most {self.MAX_SPAN[resolution].days} days.")
        return data

    def window(self, now: datetime) -> tuple[datetime, datetime]:
        data = self.cleaned_data
        if data.get("start"):
            zone = selectors.tz()
            return (
                datetime.combine(data["start"], datetime.min.time(), zone),
                datetime.combine(data["end"], datetime.min.time(), zone),
            )
        return selectors.default_window(data["resolution"], now=now)


def usage_payload(access: selectors.Access, query: UsageQuery, now: datetime) -> dict:
    start, end = query.window(now)
    resolution = query.cleaned_data["resolution"]
    buckets = selectors.usage(access, resolution, start, end)
    return {
        "meter": access.meter.number,
        "resolution": resolution,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "unit": "kWh",
        "buckets": [b.as_dict() for b in buckets],
    }


@customer_required
@require_GET
def usage_json(request: HttpRequest, number: str) -> JsonResponse:
    access = _access_or_404(request, number)
    query = UsageQuery(request.GET)
    if not query.is_valid():
        logger.info("usage query rejected: %s", query.errors.as_json())
        return JsonResponse({"errors": query.errors}, status=400)
    return JsonResponse(usage_payload(access, query, timezone.now()))


FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value: object) -> object:
    """Spreadsheets run cells that start with these as formulas (CSV injection): quote them."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


class _Echo:
    def write(self, value: str) -> str:
        return value


def csv_rows(access: selectors.Access) -> Iterator[str]:
    """One row per hourly reading, and one per day the retention policy keeps as a daily total
    (period "day": the register at the day's last reading, the usage since the row before)."""
    writer = csv.writer(_Echo())
    yield writer.writerow(
        ["hour_start_utc", "register_kwh", "used_kwh", "source", "received_utc", "period"]
    )
    previous = None
    sources = dict(Source.choices)
    for row in selectors.readings_for_export(access):
        rise = None if previous is None or row.first_wh < previous else row.first_wh - previous
        if row.is_daily_total:
            used = f"{((rise or 0) + row.usage_wh) / 1000:.3f}"
            source = f"daily total of {row.readings} hourly readings"
        else:
            used = "" if rise is None else f"{rise / 1000:.3f}"
            source = sources.get(row.source, row.source)
        previous = row.last_wh
        cells = [
            row.hour.isoformat(),
            f"{row.last_wh / 1000:.3f}",
            used,
            source,
            row.received_at.isoformat() if row.received_at else "",
            "day" if row.is_daily_total else "hour",
        ]
        yield writer.writerow([csv_safe(v) for v in cells])


@customer_required
@require_GET
def readings_csv(request: HttpRequest, number: str) -> StreamingHttpResponse:
    access = _access_or_404(request, number)
    record("customer.readings_exported", actor=request.user, target=f"meter:{number}")
    response = StreamingHttpResponse(csv_rows(access), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="readings-{number}.csv"'
    return response


# ---- consents and tokens ----


class ConsentForm(forms.Form):
    meter = forms.ChoiceField(label="Meter")
    third_party = forms.CharField(max_length=100, label="Who may read your data")
    months = forms.IntegerField(
        min_value=1, max_value=13, initial=13, label="Months of past readings (at most 13)"
    )
    valid_days = forms.IntegerField(
        min_value=1, max_value=365, initial=90, label="Access ends after (days)"
    )

    def __init__(self, *args, meters: list[selectors.Access], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["meter"].choices = [
            (a.meter.number, a.meter.number) for a in meters if a.end is None
        ]


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100, label="Token name")
    valid_days = forms.IntegerField(
        min_value=1, max_value=365, initial=90, label="Valid for (days)"
    )


@customer_required
@require_http_methods(["GET", "POST"])
def access_page(request: HttpRequest) -> HttpResponse:
    """Consents for third parties and the customer's own API tokens, on one page."""
    meters = selectors.customer_meters(request.user)
    consent_form = ConsentForm(meters=meters)
    token_form = TokenForm()
    new_secret = None
    now = timezone.now()
    if request.method == "POST":
        if request.POST.get("action") == "consent":
            consent_form = ConsentForm(request.POST, meters=meters)
            if consent_form.is_valid():
                data = consent_form.cleaned_data
                access = _access_or_404(request, data["meter"])
                _, new_secret = token_services.grant_consent(
                    request.user,
                    access,
                    third_party=data["third_party"],
                    months=data["months"],
                    valid_days=data["valid_days"],
                    now=now,
                )
        elif request.POST.get("action") == "token":
            token_form = TokenForm(request.POST)
            if token_form.is_valid():
                _, new_secret = token_services.create_personal_token(
                    request.user,
                    name=token_form.cleaned_data["name"],
                    valid_days=token_form.cleaned_data["valid_days"],
                    now=now,
                )
    tokens = (
        ApiToken.objects.filter(user=request.user).select_related("meter").order_by("-created_at")
    )
    return render(
        request,
        "accounts/portal/access.html",
        {
            "consent_form": consent_form,
            "token_form": token_form,
            "new_secret": new_secret,
            "consents": [t for t in tokens if t.kind == TokenKind.CONSENT],
            "tokens": [t for t in tokens if t.kind == TokenKind.PERSONAL],
            "now": now,
        },
    )


@customer_required
@require_POST
def revoke_token(request: HttpRequest, token_id: int) -> HttpResponse:
    token = get_object_or_404(ApiToken, pk=token_id, user=request.user)
    token_services.revoke(token, by=request.user, now=timezone.now())
    messages.success(request, f"Access for “{token.name}” is revoked.")
    return redirect("portal:access")


@customer_required
@require_POST
def declare_absence(request: HttpRequest, number: str) -> HttpResponse:
    """The current occupant declares a period with nobody home (revenue protection sees it)."""
    access = _access_or_404(request, number)
    form = AbsenceForm(request.POST)
    if access.end is not None:
        messages.error(request, "You have moved out of this address.")
    elif not form.is_valid():
        messages.error(request, "Give the first and last day away as dates.")
    else:
        try:
            absence = fraud_services.declare_absence(
                access.meter, by=request.user, now=timezone.now(), **form.cleaned_data
            )
        except fraud_services.FraudError as error:
            messages.error(request, str(error))
        else:
            messages.success(
                request,
                f"Noted: away from {absence.first_day:%-d %b} to {absence.last_day:%-d %b}.",
            )
    return redirect("portal:meter", number=number)
