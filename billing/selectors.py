"""Reads of the billing app used by views, tasks and commands."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from django.db.models import Count, Q, QuerySet, Sum

from .models import BillingRun, ChunkStatus, Invoice, InvoiceStatus


def customer_invoices(user) -> QuerySet[Invoice]:
    """Issued invoices and credit notes of the user's own accounts, newest first."""
    return Invoice.objects.filter(
        account__customer=user, status=InvoiceStatus.ISSUED
    ).select_related("account")


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


@dataclass(frozen=True)
class RunProgress:
    run_id: int
    period_start: date
    period_end: date
    status: str
    chunks_total: int
    chunks_done: int
    accounts_total: int
    accounts_done: int
    invoices_issued: int
    failed: int

    @property
    def percent(self) -> int:
        if not self.accounts_total:
            return 100 if self.chunks_done == self.chunks_total else 0
        return self.accounts_done * 100 // self.accounts_total


def run_progress(run_id: int) -> RunProgress | None:
    """How far a billing run got, from its chunks as the workers finish them."""
    run = BillingRun.objects.filter(pk=run_id).first()
    if run is None:
        return None
    done = Q(status=ChunkStatus.DONE)
    tally = run.chunks.aggregate(
        n_chunks=Count("pk"),
        n_chunks_done=Count("pk", filter=done),
        n_accounts=Sum("accounts"),
        n_accounts_done=Sum("accounts", filter=done),
        n_issued=Sum("invoices_issued", filter=done),
        n_failed=Sum("failed", filter=done),
    )
    return RunProgress(
        run_id=run.pk,
        period_start=run.period_start,
        period_end=run.period_end,
        status=run.status,
        chunks_total=tally["n_chunks"],
        chunks_done=tally["n_chunks_done"],
        accounts_total=tally["n_accounts"] or 0,
        accounts_done=tally["n_accounts_done"] or 0,
        invoices_issued=tally["n_issued"] or 0,
        failed=tally["n_failed"] or 0,
    )
