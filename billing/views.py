"""Invoice pages: customers see their own invoices; Billing (and Support) staff search them.
Every staff look at an invoice is audited."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from accounts.decorators import staff_required
from audit.models import Outcome
from audit.services import record

from . import selectors, services
from .models import Invoice
from .pdf import invoice_pdf


def customer_required(view):
    return login_required(login_url="account_login")(never_cache(view))


def _own_invoice(request: HttpRequest, number: str) -> Invoice:
    invoice = selectors.invoice_detail(number)
    # Someone else's invoice is a 404, exactly like one that does not exist.
    if invoice is None or invoice.account.customer_id != request.user.pk:
        raise Http404
    return invoice


def _pdf_response(invoice: Invoice) -> HttpResponse:
    response = HttpResponse(invoice_pdf(invoice), content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{invoice.number}.pdf"'
    response["Cache-Control"] = "private, no-store"
    return response


@customer_required
def my_invoices(request: HttpRequest) -> HttpResponse:
    invoices = selectors.customer_invoices(request.user)
    return render(request, "billing/my_invoices.html", {"invoices": invoices})


@customer_required
def my_invoice(request: HttpRequest, number: str) -> HttpResponse:
    invoice = _own_invoice(request, number)
    return render(request, "billing/my_invoice.html", {"invoice": invoice})


@customer_required
def my_invoice_pdf(request: HttpRequest, number: str) -> HttpResponse:
    return _pdf_response(_own_invoice(request, number))


@staff_required("billing.view_invoice")
def staff_invoices(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "")[:120]
    page = Paginator(selectors.search_invoices(query), 50).get_page(request.GET.get("page"))
    record(
        "billing.invoices_listed",
        actor=request.user,
        target="invoices",
        details={"query": query, "page": page.number},
    )
    return render(request, "billing/staff_invoices.html", {"page": page, "query": query})


def _staff_invoice(request: HttpRequest, number: str, action: str) -> Invoice:
    invoice = selectors.invoice_detail(number)
    if invoice is None:
        raise Http404
    record(
        action,
        actor=request.user,
        target=f"invoice:{invoice.number}",
        details={"account": invoice.account.number},
    )
    return invoice


@staff_required("billing.view_invoice")
def staff_invoice(request: HttpRequest, number: str) -> HttpResponse:
    invoice = _staff_invoice(request, number, "billing.invoice_viewed")
    can_credit = request.user.has_perm("billing.issue_credit_note")
    return render(
        request, "billing/staff_invoice.html", {"invoice": invoice, "can_credit": can_credit}
    )


@staff_required("billing.view_invoice")
def staff_invoice_pdf(request: HttpRequest, number: str) -> HttpResponse:
    return _pdf_response(_staff_invoice(request, number, "billing.invoice_pdf_viewed"))


@require_POST
@staff_required("billing.issue_credit_note")
def staff_credit_note(request: HttpRequest, number: str) -> HttpResponse:
    invoice = selectors.invoice_detail(number)
    if invoice is None:
        raise Http404
    reason = request.POST.get("reason", "")[:500]
    try:
        note, replacement = services.issue_credit_note(
            invoice,
            actor=request.user,
            reason=reason,
            now=timezone.now(),
            rebill=request.POST.get("rebill") == "on",
        )
    except services.BillingError as exc:
        record(
            "billing.credit_note_issued",
            actor=request.user,
            target=f"invoice:{invoice.number}",
            outcome=Outcome.FAILURE,
            details={"error": str(exc)},
        )
        messages.error(request, str(exc))
        return redirect("billing_staff_invoice", number=invoice.number)
    text = f"Credit note {note.number} issued."
    if replacement:
        text += f" Replacement invoice {replacement.number} issued."
    messages.success(request, text)
    return redirect("billing_staff_invoice", number=note.number)


@staff_required("billing.view_billingrun")
def staff_runs(request: HttpRequest) -> HttpResponse:
    page = Paginator(selectors.recent_runs(), 50).get_page(request.GET.get("page"))
    return render(request, "billing/staff_runs.html", {"page": page})
