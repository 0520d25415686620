"""The audited staff view of a meter's usage, for support staff answering a customer's call."""

from __future__ import annotations

from datetime import UTC, datetime

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from accounts.decorators import staff_required
from audit.services import record
from devices.models import Meter

from . import selectors


@staff_required(permission="readings.view_reading")
@never_cache
@require_GET
def staff_meter_usage(request: HttpRequest, number: str) -> HttpResponse:
    """Support staff look at a meter's usage when a customer calls: every view is audited."""
    meter = get_object_or_404(Meter, number=number)
    access = selectors.Access(meter, datetime(2000, 1, 1, tzinfo=UTC), None)
    record(
        "staff.customer_data_viewed",
        actor=request.user,
        target=f"meter:{number}",
        details={"view": "usage"},
    )
    now = timezone.now()
    start, end = selectors.default_window("day", now=now)
    return render(
        request,
        "readings/staff_usage.html",
        {
            "meter": meter,
            "current": selectors.current_reading(access),
            "buckets": selectors.usage(access, "day", start, end),
        },
    )
