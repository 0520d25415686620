"""Staff pages for revenue protection, and the field engineers' dispatch list."""

from __future__ import annotations

from datetime import timedelta

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from accounts.decorators import staff_required
from audit.models import Outcome
from audit.services import record
from devices.models import Meter

from . import conf, selectors, services
from .forms import (
    CaseFilterForm,
    CloseForm,
    DispatchForm,
    NoteForm,
    ResolveForm,
    UploadForm,
    VisitForm,
)
from .models import CASE_TRANSITIONS, Case, CaseState, ReadingsUpload, Severity, WorkOrder

# --- Revenue protection ---


@staff_required("fraud.view_case")
def case_list(request: HttpRequest) -> HttpResponse:
    form = CaseFilterForm(request.GET or None)
    filters = form.cleaned_data if form.is_valid() else {}
    qs = selectors.cases(
        state=filters.get("state") or "",
        severity=filters.get("severity"),
        cause=filters.get("cause") or "",
        meter_number=filters.get("meter") or "",
    )
    counts = selectors.severity_counts()
    return render(
        request,
        "fraud/case_list.html",
        {
            "form": form,
            "cases": qs[:500],
            "severities": [(label, counts.get(value, 0)) for value, label in Severity.choices][
                ::-1
            ],
            "held": selectors.awaiting_approval(),
        },
    )


@staff_required("fraud.view_case")
def case_detail(request: HttpRequest, pk: int) -> HttpResponse:
    case = get_object_or_404(Case.objects.select_related("meter", "meter__premises"), pk=pk)
    # The evidence is a household's consumption: staff views of it are audited.
    record(
        "staff.customer_data_viewed",
        actor=request.user,
        target=f"meter:{case.meter.number}",
        details={"view": "fraud_case", "case": case.pk},
    )
    return render(
        request,
        "fraud/case_detail.html",
        {
            "case": case,
            "chart": case.evidence.get("chart"),
            "figures": {k: v for k, v in case.evidence.items() if k != "chart"},
            "history": case.history.select_related("actor"),
            "work_orders": case.work_orders.select_related("engineer", "created_by", "approved_by")
            .prefetch_related("uploads")
            .order_by("-created_at"),
            "other_cases": selectors.meter_history(case.meter_id, exclude_case=case.pk),
            # Declared absences near the evidence: an empty home is not a bypass.
            "absences": selectors.absences(
                case.meter_id, since=(case.opened_at - timedelta(days=120)).date()
            ),
            "note_form": NoteForm(),
            "resolve_form": ResolveForm(),
            "close_form": CloseForm(),
            "dispatch_form": DispatchForm(),
            "can_resolve": CaseState.RESOLVED in _next_states(case),
            "can_close": CaseState.CLOSED in _next_states(case),
            "can_dispatch": case.state == CaseState.OPEN,
        },
    )


def _next_states(case: Case) -> frozenset[str]:
    return CASE_TRANSITIONS[case.state]


def _done(request: HttpRequest, case_pk: int, error: services.FraudError | None = None):
    if error is not None:
        messages.error(request, str(error))
    return redirect("fraud:case", pk=case_pk)


@require_POST
@staff_required("fraud.work_case")
def case_note(request: HttpRequest, pk: int) -> HttpResponse:
    case = get_object_or_404(Case, pk=pk)
    form = NoteForm(request.POST)
    if form.is_valid():
        try:
            services.add_note(case, form.cleaned_data["text"], by=request.user, now=timezone.now())
        except services.FraudError as exc:
            return _done(request, pk, exc)
    return _done(request, pk)


@require_POST
@staff_required("fraud.work_case")
def case_resolve(request: HttpRequest, pk: int) -> HttpResponse:
    case = get_object_or_404(Case, pk=pk)
    form = ResolveForm(request.POST)
    if not form.is_valid():
        return _done(request, pk, services.FraudError("Choose a resolution."))
    try:
        services.transition(
            case,
            CaseState.RESOLVED,
            by=request.user,
            now=timezone.now(),
            resolution=form.cleaned_data["resolution"],
            note=form.cleaned_data["note"],
        )
    except services.FraudError as exc:
        return _done(request, pk, exc)
    return _done(request, pk)


@require_POST
@staff_required("fraud.work_case")
def case_close(request: HttpRequest, pk: int) -> HttpResponse:
    case = get_object_or_404(Case, pk=pk)
    form = CloseForm(request.POST)
    note = form.cleaned_data["note"] if form.is_valid() else ""
    try:
        services.transition(case, CaseState.CLOSED, by=request.user, now=timezone.now(), note=note)
    except services.FraudError as exc:
        return _done(request, pk, exc)
    return _done(request, pk)


@require_POST
@staff_required("fraud.dispatch_engineer")
def case_dispatch(request: HttpRequest, pk: int) -> HttpResponse:
    case = get_object_or_404(Case, pk=pk)
    form = DispatchForm(request.POST)
    if not form.is_valid():
        return _done(request, pk, services.FraudError("Choose a field engineer."))
    try:
        order = services.dispatch(
            case,
            form.cleaned_data["engineer"],
            by=request.user,
            now=timezone.now(),
            note=form.cleaned_data["instructions"],
        )
    except services.FraudError as exc:
        return _done(request, pk, exc)
    if order.held_because:
        messages.warning(
            request, "Dispatch held for a second approver: " + "; ".join(order.held_because)
        )
    else:
        messages.success(request, f"Dispatched to {order.engineer.email}.")
    return _done(request, pk)


@require_POST
@staff_required("fraud.approve_dispatch")
def work_order_approve(request: HttpRequest, pk: int) -> HttpResponse:
    order = get_object_or_404(WorkOrder, pk=pk)
    try:
        services.approve(order, by=request.user, now=timezone.now())
    except services.FraudError as exc:
        return _done(request, order.case_id, exc)
    messages.success(request, "Dispatch approved.")
    return _done(request, order.case_id)


@require_POST
@staff_required("fraud.dispatch_engineer")
def work_order_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    order = get_object_or_404(WorkOrder, pk=pk)
    try:
        services.cancel(order, by=request.user, now=timezone.now())
    except services.FraudError as exc:
        return _done(request, order.case_id, exc)
    return _done(request, order.case_id)


@staff_required("fraud.view_case")
def meter_evidence(request: HttpRequest, meter_id: int) -> HttpResponse:
    meter = get_object_or_404(Meter.objects.select_related("premises"), pk=meter_id)
    record(
        "staff.customer_data_viewed",
        actor=request.user,
        target=f"meter:{meter.number}",
        details={"view": "fraud_meter"},
    )
    return render(
        request,
        "fraud/meter.html",
        {
            "meter": meter,
            "chart": selectors.meter_daily_chart(meter.pk, now=timezone.now()),
            "cases": selectors.meter_history(meter.pk),
        },
    )


# --- Field engineers: their own jobs only ---


def _own_job(request: HttpRequest, pk: int) -> WorkOrder:
    """The engineer's own job; anything else is a 404, and an attempt on someone else's job
    is audited."""
    order = selectors.job_for(request.user, pk)
    if order is None:
        exists = WorkOrder.objects.filter(pk=pk).exists()
        record(
            "fraud.job_access_denied",
            actor=request.user,
            target=f"workorder:{pk}",
            outcome=Outcome.DENIED,
            details={"exists": exists, "method": request.method},
        )
        raise Http404("No such job")
    return order


@staff_required("fraud.field_work")
def dispatch_list(request: HttpRequest) -> HttpResponse:
    jobs = list(selectors.jobs_for(request.user))
    return render(
        request,
        "fraud/dispatch_list.html",
        {
            "open_jobs": [j for j in jobs if j.visited_at is None],
            "done_jobs": [j for j in jobs if j.visited_at is not None][:20],
        },
    )


@staff_required("fraud.field_work")
def job_detail(request: HttpRequest, pk: int) -> HttpResponse:
    order = _own_job(request, pk)
    visit_form = VisitForm()
    if request.method == "POST":
        visit_form = VisitForm(request.POST)
        if visit_form.is_valid():
            try:
                services.record_visit(
                    order,
                    by=request.user,
                    outcome=visit_form.cleaned_data["outcome"],
                    notes=visit_form.cleaned_data["notes"],
                    now=timezone.now(),
                )
            except services.FraudError as exc:
                messages.error(request, str(exc))
            else:
                messages.success(request, "Visit recorded.")
            return redirect("fraud:job", pk=pk)
    case = order.case
    return render(
        request,
        "fraud/job_detail.html",
        {
            "job": order,
            "case": case,
            "history": selectors.meter_history(case.meter_id, exclude_case=case.pk)[:10],
            "uploads": ReadingsUpload.objects.filter(work_order=order).order_by("-uploaded_at"),
            "visit_form": visit_form,
            "upload_form": UploadForm(),
            "max_mb": conf.setting("UPLOAD_MAX_BYTES") / 1024 / 1024,
        },
    )


@require_POST
@staff_required("fraud.field_work")
def job_upload(request: HttpRequest, pk: int) -> HttpResponse:
    order = _own_job(request, pk)
    form = UploadForm(request.POST, request.FILES)
    if not form.is_valid():
        messages.error(request, "Choose the export file to upload.")
        return redirect("fraud:job", pk=pk)
    # Never read more than one byte past the limit: the service refuses anything that long.
    data = form.cleaned_data["export"].read(conf.setting("UPLOAD_MAX_BYTES") + 1)
    try:
        upload = services.accept_upload(order, data, by=request.user, now=timezone.now())
    except services.FraudError as exc:
        messages.error(request, str(exc))
        return redirect("fraud:job", pk=pk)
    text = (
        f"Verified: {upload.readings} readings, {upload.inserted} new, "
        f"{upload.duplicates} already known"
    )
    if upload.conflicts:
        messages.warning(
            request,
            text + f", {upload.conflicts} differ from what the meter sent by SMS "
            "(flagged for revenue protection).",
        )
    else:
        messages.success(request, text + ".")
    return redirect("fraud:job", pk=pk)
