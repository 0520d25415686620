"""Reads of the billing app used by views, tasks and commands."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from .models import BillingRun, Invoice, InvoiceStatus


def customer_invoices(user) -> QuerySet[Invoice]:
    """Issued invoices and credit notes of the user's own accounts, newest first."""
    return Invoice.objects.filter(
        account__customer=user, status=InvoiceStatus.ISSUED
    ).select_related("account")


def customer_invoice(user, number: str) -> Invoice | None:
    return customer_invoices(user).filter(number=number).first()


def invoice_detail(number: str) -> Invoice | None:
    return (
        Invoice.objects.filter(number=number, status=InvoiceStatus.ISSUED)
        .select_related("account__customer", "account__premises", "credits", "replaces")
        .prefetch_related("lines", "reads__meter", "credit_notes")
        .first()
    )


def search_invoices(query: str) -> QuerySet[Invoice]:
    qs = Invoice.objects.filter(status=InvoiceStatus.ISSUED).select_related("account__customer")
    query = query.strip()
    if query:
        qs = qs.filter(
            Q(number__iexact=query)
            | Q(account__number__iexact=query)
            | Q(account__customer__email__iexact=query)
            | Q(account__premises__reference__iexact=query)
        )
    return qs


def recent_runs() -> QuerySet[BillingRun]:
    return BillingRun.objects.order_by("-period_start", "-pk")
