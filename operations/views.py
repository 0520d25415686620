from __future__ import annotations

from datetime import date

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from accounts.decorators import staff_required
from accounts.roles import ROLES
from fraud.models import Severity

from . import runs, selectors, services
from .models import RunKind, StaffRun
from .stuck import stuck_items

# Who may start each kind of run, and who may watch it.
START_PERMISSION = {RunKind.BILLING: "billing.start_run", RunKind.SCAN: "operations.start_scan"}
VIEW_PERMISSION = {RunKind.BILLING: "billing.view_billingrun", RunKind.SCAN: "fraud.view_case"}


def _fleet(now) -> dict:
    by_status, silent_count = selectors.meter_counts(now=now)
    runs.count_read_rates(now=now)  # nothing to do once beat has counted the days
    return {
        "by_status": by_status,
        "read_rates": selectors.read_rates(now=now),
        "silent_count": silent_count,
        "silent": selectors.silent_meters(now=now) if silent_count else [],
        "recently_heard": selectors.recently_heard(),
        "rejected": selectors.rejected_by_reason(now=now),
        "outbound": selectors.outbound_queue(),
        "rotations": selectors.rotations_in_progress(),
    }


def _billing(now) -> dict:
    return {
        "runs": selectors.recent_billing_runs(),
        "next_due": selectors.next_due_run(today=timezone.localdate(now)),
        "failed_runs": selectors.failed_billing_runs(),
    }


def _revenue_protection(now) -> dict:
    return {
        "cases": [
            (Severity(severity).label, count)
            for severity, count in sorted(selectors.open_cases_by_severity().items(), reverse=True)
        ],
        "recent_cases": selectors.recent_cases(),
        "dispatches_today": selectors.dispatches_today(now=now),
    }


def _security(now) -> dict:
    return {
        "verification": selectors.last_chain_verification(),
        **selectors.security_signals(now=now),
    }


# Each panel of the home: the permission that shows it, and what it shows.
PANELS = {
    "fleet": ("devices.view_meter", _fleet),
    "billing": ("billing.view_billingrun", _billing),
    "revenue_protection": ("fraud.view_case", _revenue_protection),
    "security": ("audit.view_auditevent", _security),
}


@staff_required()
@never_cache
def staff_home(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    user = request.user
    names = set(user.groups.values_list("name", flat=True))
    panels = {
        name: build(now)
        for name, (permission, build) in PANELS.items()
        if user.has_perm(permission)
    }
    runs = selectors.latest_runs()
    stuck = [i for i in stuck_items(now=now) if i.count and user.has_perm(i.permission)]
    return render(
        request,
        "operations/home.html",
        {
            "roles": [role for role in ROLES if role.name in names],
            "panels": panels,
            "stuck": stuck,
            "runs": {
                kind: runs.get(kind) for kind in RunKind if user.has_perm(VIEW_PERMISSION[kind])
            },
            "can_start": {kind for kind in RunKind if user.has_perm(START_PERMISSION[kind])},
            "default_period": selectors.default_billing_period(
                today=timezone.localdate(now), due=panels.get("billing", {}).get("next_due")
            ),
        },
    )


@staff_required()
@require_POST
def start_run(request: HttpRequest, kind: str) -> HttpResponse:
    if kind not in START_PERMISSION:
        raise Http404
    if not request.user.has_perm(START_PERMISSION[kind]):
        raise PermissionDenied
    period_start = None
    if kind == RunKind.BILLING:
        try:
            period_start = date.fromisoformat(request.POST.get("period_start", ""))
        except ValueError:
            messages.error(request, "Enter the first day of the billing period (YYYY-MM-DD).")
            return redirect("staff:home")
    try:
        run = services.start_run(
            kind=kind, by=request.user, now=timezone.now(), period_start=period_start
        )
    except services.RunRefused as refusal:
        messages.error(request, str(refusal))
        return redirect("staff:home")
    messages.success(request, f"{run.get_kind_display()} queued.")
    return redirect("staff:run", pk=run.pk)


@staff_required()
@never_cache
def run_detail(request: HttpRequest, pk: int) -> HttpResponse:
    run = get_object_or_404(StaffRun.objects.select_related("requested_by"), pk=pk)
    if not request.user.has_perm(VIEW_PERMISSION[run.kind]):
        raise PermissionDenied
    return render(request, "operations/run.html", {"run": run})
