"""Billing runs, invoices and credit notes: every write of the billing app is here."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from itertools import count
from zoneinfo import ZoneInfo

from celery import chord, current_app, group
from django.db import IntegrityError, connection, transaction
from django.db.models import (
    Case,
    CharField,
    Count,
    Exists,
    F,
    Model,
    OuterRef,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
)
from django.db.models import Window as Over
from django.db.models.functions import Cast, Coalesce, Concat, LPad, RowNumber
from django.utils import timezone

from audit.models import Outcome
from audit.services import record
from devices.models import Meter, MeterReplacement

from . import rating
from .conf import setting
from .consumption import Window, WindowUsage, combined_usage, read_alias, window_usage
from .models import (
    BillingAccount,
    BillingChunk,
    BillingRun,
    ChunkStatus,
    Invoice,
    InvoiceKind,
    InvoiceLine,
    InvoiceStatus,
    LineKind,
    MeterRead,
    RunStatus,
    TariffVersion,
)

logger = logging.getLogger(__name__)
BillingError = rating.BillingError


# --- periods -------------------------------------------------------------------------------


def add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, day.day)


def local_midnight(day: date) -> datetime:
    """Start of a local day (BILLING_TIME_ZONE) as a UTC instant."""
    zone = ZoneInfo(setting("BILLING_TIME_ZONE"))
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def hour_floor(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def hour_ceil(moment: datetime) -> datetime:
    floor = hour_floor(moment)
    return floor if floor == moment else floor + timedelta(hours=1)


def supply_dates(account: BillingAccount, start: date, end: date) -> tuple[date, date] | None:
    """The days of [start, end) the account was supplied (opened_on <= day < closed_on)."""
    first = max(start, account.opened_on)
    last = min(end, account.closed_on or end)
    return (first, last) if first < last else None


# --- meter windows -------------------------------------------------------------------------


def meter_windows(
    accounts: Iterable[BillingAccount], start: date, end: date, *, wids: Iterable[int] | None = None
) -> list[Window]:
    """Each account's meters over its supplied part of [start, end), split at meter swaps."""
    accounts = list(accounts)
    wids = iter(wids or count(1))
    alias = read_alias()
    premises_ids = {a.premises_id for a in accounts}
    meters: dict[int, set[int]] = defaultdict(set)
    for meter_id, premises_id in (
        Meter.objects.using(alias)
        .filter(premises_id__in=premises_ids)
        .values_list("id", "premises_id")
    ):
        meters[premises_id].add(meter_id)
    installed: dict[int, MeterReplacement] = {}
    removed: dict[int, MeterReplacement] = {}
    for swap in MeterReplacement.objects.using(alias).filter(premises_id__in=premises_ids):
        meters[swap.premises_id].update({swap.old_meter_id, swap.new_meter_id})
        installed[swap.new_meter_id] = swap
        removed[swap.old_meter_id] = swap
    windows = []
    for account in accounts:
        dates = supply_dates(account, start, end)
        if dates is None:
            continue
        acc_start, acc_end = local_midnight(dates[0]), local_midnight(dates[1])
        for meter_id in sorted(meters.get(account.premises_id, ())):
            w_start, w_end, start_anchor, end_anchor = acc_start, acc_end, None, None
            if meter_id in installed:
                # The new meter counts from its first register at the (hour of the) swap.
                swap = installed[meter_id]
                at = hour_floor(swap.replaced_at)
                if at >= acc_start:
                    w_start, start_anchor = at, swap.new_first_wh
            if meter_id in removed:
                # The old meter counts up to its final register, at the hour after the swap.
                swap = removed[meter_id]
                at = hour_ceil(swap.replaced_at)
                if at <= acc_end:
                    w_end, end_anchor = at, swap.old_final_wh
            if w_start < w_end:
                windows.append(
                    Window(
                        next(wids),
                        account.pk,
                        meter_id,
                        account.tariff_id,
                        w_start,
                        w_end,
                        start_anchor,
                        end_anchor,
                    )
                )
    return windows


# --- invoices ------------------------------------------------------------------------------


@dataclass
class Draft:
    lines: list[rating.Line]
    reads: list[WindowUsage]


def _versions(account: BillingAccount) -> list[TariffVersion]:
    return _versions_of([account])[account.tariff_id]


def _versions_of(accounts: Iterable[BillingAccount]) -> dict[int, list[TariffVersion]]:
    """The tariff versions (with bands and tiers) of the accounts' tariffs, per tariff."""
    versions: dict[int, list[TariffVersion]] = defaultdict(list)
    for version in TariffVersion.objects.filter(
        tariff_id__in={account.tariff_id for account in accounts}
    ).prefetch_related("bands", "tiers"):
        versions[version.tariff_id].append(version)
    return versions


def compute(
    account: BillingAccount,
    start: date,
    end: date,
    usage: list[WindowUsage] | None = None,
    versions: list[TariffVersion] | None = None,
) -> Draft:
    """The energy and standing-charge lines of one account for [start, end)."""
    dates = supply_dates(account, start, end)
    if dates is None:
        return Draft([], [])
    if usage is None:
        usage = list(window_usage(meter_windows([account], start, end)).values())
    segs = rating.segments(versions or _versions(account), *dates)
    lines = rating.energy_lines(segs, combined_usage(usage), (end - start).days)
    return Draft(lines + rating.standing_lines(segs), usage)


def _as_lines(rows: Iterable[InvoiceLine]) -> list[rating.Line]:
    return [
        rating.Line(
            kind=r.kind,
            description=r.description,
            key=r.key,
            segment_start=r.segment_start,
            segment_end=r.segment_end,
            quantity=r.quantity,
            unit=r.unit,
            unit_price=r.unit_price,
            amount=r.amount,
            tax_rate=r.tax_rate,
            band=r.band,
            estimated=r.estimated,
            corrects_id=r.corrects_id,
        )
        for r in rows
    ]


def _billed_lines() -> QuerySet[InvoiceLine]:
    """Issued kWh lines, each with its account and the period it bills (`billed_start`,
    `billed_end`): that of the invoice it `corrects`, else its own document's."""
    return InvoiceLine.objects.filter(invoice__status=InvoiceStatus.ISSUED, unit="kWh").annotate(
        account_id=F("invoice__account_id"),
        billed_start=Coalesce("corrects__period_start", "invoice__period_start"),
        billed_end=Coalesce("corrects__period_end", "invoice__period_end"),
    )


def billed_for_period(account_id: int, start: date, end: date) -> QuerySet[InvoiceLine]:
    """Every issued kWh line that bills the account's period [start, end), on any document:
    the period's invoices and their replacements, credit notes, and the corrections of the
    period that later invoices carry. Their sum per key is what the customer owes for it."""
    return _billed_lines().filter(account_id=account_id, billed_start=start, billed_end=end)


def _needs_repricing() -> Exists:
    """The standing invoice's period holds an estimate, or lines on other documents: only then
    can what was billed for it differ from its consumption as known today."""
    return Exists(
        _billed_lines()
        .filter(
            account_id=OuterRef("account_id"),
            billed_start=OuterRef("period_start"),
            billed_end=OuterRef("period_end"),
        )
        .filter(Q(estimated=True) | ~Q(invoice_id=OuterRef("pk")))
    )


def corrections_for(
    accounts: list[BillingAccount],
    before: date,
    versions: dict[int, list[TariffVersion]] | None = None,
) -> tuple[dict[int, list[rating.Line]], dict[int, BillingError]]:
    """Re-price the accounts' recent billed periods with today's readings and return, per
    account, the difference between that and everything billed for them so far as adjustment
    lines (an actual read corrects an estimate; a credited correction is billed again), and
    the accounts whose periods could not be re-priced. A fixed number of queries however many
    accounts: one for the periods, one for what was billed, one for their consumption."""
    by_id = {account.pk: account for account in accounts}
    if versions is None:
        versions = _versions_of(accounts)
    recent = (
        Invoice.objects.filter(
            account_id__in=by_id,
            kind=InvoiceKind.INVOICE,
            status=InvoiceStatus.ISSUED,
            period_end__lte=before,
            credit_notes__isnull=True,
        )
        .filter(_needs_repricing())
        .annotate(
            recency=Over(
                RowNumber(), partition_by=F("account_id"), order_by=F("period_start").desc()
            )
        )
        .filter(recency__lte=setting("BILLING_CORRECTION_LOOKBACK"))
        .order_by("account_id", "period_start")
    )
    periods: dict[tuple[date, date], list[Invoice]] = defaultdict(list)
    for earlier in recent:
        periods[(earlier.period_start, earlier.period_end)].append(earlier)
    billed: dict[tuple[int, date, date], list[InvoiceLine]] = defaultdict(list)
    if periods:
        for line in _billed_lines().filter(
            account_id__in=by_id, billed_start__gte=min(start for start, _ in periods)
        ):
            billed[(line.account_id, line.billed_start, line.billed_end)].append(line)
    windows, wids, window_period = [], count(1), {}
    for (start, end), invoices in periods.items():
        made = meter_windows([by_id[i.account_id] for i in invoices], start, end, wids=wids)
        windows += made
        window_period.update((window.wid, (start, end)) for window in made)
    usage: dict[tuple[int, date, date], list[WindowUsage]] = defaultdict(list)
    for item in window_usage(windows).values():
        usage[(item.window.account_id, *window_period[item.window.wid])].append(item)
    result: dict[int, list[rating.Line]] = defaultdict(list)
    errors: dict[int, BillingError] = {}
    for (start, end), invoices in periods.items():
        for earlier in invoices:
            account = by_id[earlier.account_id]
            if account.pk in errors:
                continue
            try:
                redo = compute(
                    account,
                    start,
                    end,
                    usage.get((account.pk, start, end), []),
                    versions[account.tariff_id],
                )
            except BillingError as exc:
                errors[account.pk] = exc
                continue
            energy = [line for line in redo.lines if line.kind == LineKind.ENERGY]
            label = f"{earlier.number}, {start} - {end}"
            done = _as_lines(billed[(account.pk, start, end)])
            result[account.pk] += rating.correction_lines(done, energy, earlier.pk, label)
    return dict(result), errors


def corrections(account: BillingAccount, before: date) -> list[rating.Line]:
    """The corrections of one account's recent periods (see `corrections_for`)."""
    result, errors = corrections_for([account], before)
    if account.pk in errors:
        raise errors[account.pk]
    return result.get(account.pk, [])


def _register(value: Decimal | None) -> int | None:
    return None if value is None else int(Decimal(value).quantize(Decimal(1), ROUND_HALF_EVEN))


@dataclass
class Document:
    """An invoice or credit note to write: its lines and the meter reads it shows."""

    account: BillingAccount
    kind: str
    start: date
    end: date
    lines: list[rating.Line]
    reads: list[WindowUsage] = field(default_factory=list)
    run: BillingRun | None = None
    credits: Invoice | None = None
    replaces: Invoice | None = None
    reason: str = ""


NUMBER_PREFIX = {InvoiceKind.INVOICE: "INV-", InvoiceKind.CREDIT_NOTE: "CRN-"}
LINE_COLUMNS = (
    "invoice",
    "position",
    "kind",
    "description",
    "key",
    "band",
    "segment_start",
    "segment_end",
    "quantity",
    "unit",
    "unit_price",
    "amount",
    "tax_rate",
    "estimated",
    "corrects",
)
READ_COLUMNS = (
    "invoice",
    "meter",
    "opening_at",
    "opening_wh",
    "opening_estimated",
    "closing_at",
    "closing_wh",
    "closing_estimated",
)


def _copy(model: type[Model], fields: tuple[str, ...], rows: Iterable[tuple]) -> None:
    """Insert rows (values in the order of `fields`) with one COPY: the lines and reads of a
    batch are most of its rows, and building model instances for them cost more than the
    database took to store them. Values are already what the columns hold (rounded Decimals)."""
    meta = model._meta
    columns = ", ".join(connection.ops.quote_name(meta.get_field(f).column) for f in fields)
    table = connection.ops.quote_name(meta.db_table)
    with (
        connection.cursor() as cursor,
        cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy,
    ):
        for row in rows:
            copy.write_row(row)


@transaction.atomic
def write_documents(documents: list[Document], *, now: datetime, by: str) -> list[Invoice]:
    """Insert the drafts, all their lines and all their reads with one statement each, then
    issue them (number, status) with one UPDATE, in one transaction: a batch of a billing run
    costs four statements, whatever its size."""
    if not documents:
        return []
    invoices = Invoice.objects.bulk_create(
        Invoice(
            kind=doc.kind,
            account=doc.account,
            run=doc.run,
            period_start=doc.start,
            period_end=doc.end,
            currency=doc.account.currency,
            subtotal=subtotal,
            tax=tax,
            total=total,
            estimated=any(line.estimated for line in doc.lines),
            credits=doc.credits,
            replaces=doc.replaces,
            reason=doc.reason,
            created_by=by,
            created_at=now,
        )
        for doc in documents
        for subtotal, tax, total in [rating.totals(doc.lines)]
    )
    _copy(
        InvoiceLine,
        LINE_COLUMNS,
        (
            (
                invoice.pk,
                position,
                line.kind,
                line.description,
                line.key,
                line.band,
                line.segment_start,
                line.segment_end,
                line.quantity,
                line.unit,
                line.unit_price,
                line.amount,
                line.tax_rate,
                line.estimated,
                line.corrects_id,
            )
            for invoice, doc in zip(invoices, documents, strict=True)
            for position, line in enumerate(doc.lines, start=1)
        ),
    )
    _copy(
        MeterRead,
        READ_COLUMNS,
        (
            (
                invoice.pk,
                item.window.meter_id,
                item.window.start,
                _register(item.opening_wh),
                item.opening_estimated,
                item.window.end,
                _register(item.closing_wh),
                item.closing_estimated,
            )
            for invoice, doc in zip(invoices, documents, strict=True)
            for item in doc.reads
        ),
    )
    digits = Cast("id", CharField())
    Invoice.objects.filter(pk__in=[invoice.pk for invoice in invoices]).update(
        status=InvoiceStatus.ISSUED,
        issued_at=now,
        number=Concat(
            Case(*(When(kind=kind, then=Value(prefix)) for kind, prefix in NUMBER_PREFIX.items())),
            Case(When(id__lt=10**8, then=LPad(digits, 8, Value("0"))), default=digits),
        ),
    )
    for invoice in invoices:
        invoice.number = f"{NUMBER_PREFIX[invoice.kind]}{invoice.pk:08d}"
        invoice.status, invoice.issued_at = InvoiceStatus.ISSUED, now
    return invoices


def _write(account: BillingAccount, *, now: datetime, by: str, **document) -> Invoice:
    return write_documents([Document(account=account, **document)], now=now, by=by)[0]


def issue_invoice(
    account: BillingAccount,
    start: date,
    end: date,
    *,
    now: datetime,
    by: str,
    run: BillingRun | None = None,
    usage: list[WindowUsage] | None = None,
) -> Invoice:
    """Bill one account for [start, end): energy, standing charge, corrections of estimates."""
    draft = compute(account, start, end, usage)
    lines = draft.lines + corrections(account, start)
    return _write(
        account,
        kind=InvoiceKind.INVOICE,
        start=start,
        end=end,
        lines=lines,
        reads=draft.reads,
        now=now,
        by=by,
        run=run,
    )


def _credit(line: InvoiceLine | rating.Line, description: str) -> rating.Line:
    """The line reversed, billing the same period (`corrects`) as the line it cancels."""
    return rating.Line(
        kind=LineKind.CREDIT,
        description=description,
        key=line.key,
        segment_start=line.segment_start,
        segment_end=line.segment_end,
        quantity=-line.quantity,
        unit=line.unit,
        unit_price=line.unit_price,
        amount=-line.amount,
        tax_rate=line.tax_rate,
        band=line.band,
        estimated=line.estimated,
        corrects_id=line.corrects_id,
    )


def issue_credit_note(
    invoice: Invoice, *, actor, reason: str, now: datetime, rebill: bool = True
) -> tuple[Invoice, Invoice | None]:
    """Cancel an issued invoice with a credit note (never by editing it) and, by default,
    re-bill the period from today's readings. Returns (credit note, replacement or None)."""
    reason = reason.strip()
    if not reason:
        raise BillingError("a credit note needs a reason")
    if invoice.kind != InvoiceKind.INVOICE or invoice.status != InvoiceStatus.ISSUED:
        raise BillingError("only an issued invoice can be credited")
    by = actor.get_username() if hasattr(actor, "get_username") else str(actor)
    # A line correcting another period is cancelled already when that period was credited
    # after this invoice was issued (its credit note took every document's lines of the period).
    credited_since = list(
        Invoice.objects.filter(
            account_id=invoice.account_id, kind=InvoiceKind.CREDIT_NOTE, pk__gt=invoice.pk
        ).values_list("period_start", "period_end")
    )
    lines = [
        _credit(line, f"Credit: {line.description}")
        for line in invoice.lines.all()
        if invoice.period_start <= line.segment_start < invoice.period_end
        or not any(start <= line.segment_start < end for start, end in credited_since)
    ]
    # What other documents billed for this period (corrections carried by later invoices, net
    # of their own credits) is cancelled too: after the note nothing of the period is billed.
    elsewhere = rating.net_by_key(
        _as_lines(
            billed_for_period(invoice.account_id, invoice.period_start, invoice.period_end).exclude(
                invoice=invoice
            )
        )
    )
    lines += [
        replace(
            _credit(line, f"Credit: {line.description}"),
            corrects_id=invoice.pk,
        )
        for line in elsewhere
    ]
    with transaction.atomic():
        try:
            note = _write(
                invoice.account,
                kind=InvoiceKind.CREDIT_NOTE,
                start=invoice.period_start,
                end=invoice.period_end,
                lines=lines,
                reads=[],
                now=now,
                by=by,
                credits=invoice,
                reason=reason,
            )
        except IntegrityError as exc:
            raise BillingError(f"invoice {invoice.number} is already credited") from exc
        replacement = None
        if rebill:
            draft = compute(invoice.account, invoice.period_start, invoice.period_end)
            # The credit note cancelled the corrections the invoice carried too: the
            # replacement carries them again (re-priced with today's readings).
            lines = draft.lines + corrections(invoice.account, invoice.period_start)
            replacement = _write(
                invoice.account,
                kind=InvoiceKind.INVOICE,
                start=invoice.period_start,
                end=invoice.period_end,
                lines=lines,
                reads=draft.reads,
                now=now,
                by=by,
                replaces=invoice,
                reason=reason,
            )
        record(
            "billing.credit_note_issued",
            actor=actor,
            target=f"invoice:{invoice.number}",
            details={
                "credit_note": note.number,
                "replacement": replacement.number if replacement else None,
                "amount": str(note.total),
                "reason": reason[:200],
            },
        )
    return note, replacement


# --- billing runs --------------------------------------------------------------------------


def accounts_for_period(start: date, end: date):
    """Accounts whose cycle starts this period and who were supplied during it."""
    return (
        BillingAccount.objects.filter(cycle_day=start.day, opened_on__lt=end)
        .filter(Q(closed_on__isnull=True) | Q(closed_on__gt=start))
        .order_by("pk")
    )


def _standing_overlapping(account_ids: Iterable[int], start: date, end: date):
    return Invoice.objects.filter(
        account_id__in=account_ids,
        kind=InvoiceKind.INVOICE,
        status=InvoiceStatus.ISSUED,
        credit_notes__isnull=True,
        period_start__lt=end,
        period_end__gt=start,
    ).order_by("period_start", "pk")


@dataclass
class Failure:
    account: BillingAccount
    action: str
    reason: str
    details: dict


def _bill_accounts(
    accounts: list[BillingAccount], run: BillingRun
) -> tuple[list[Document], list[Failure]]:
    """The invoices of a batch of accounts for the run's period, computed with a handful of
    queries for the whole batch (consumption, clashes, which need corrections), and the
    accounts that cannot be billed."""
    start, end = run.period_start, run.period_end
    failures: list[Failure] = []
    clashes: dict[int, Invoice] = {}
    for invoice in _standing_overlapping([a.pk for a in accounts], start, end):
        clashes.setdefault(invoice.account_id, invoice)
    for account_id, clash in clashes.items():
        # A cycle-day change or a second account at the premises: billing these days again
        # would charge them twice. Flag it for a person instead.
        account = next(a for a in accounts if a.pk == account_id)
        failures.append(
            Failure(
                account,
                "billing.account_overlap",
                f"invoice {clash.number} already covers {clash.period_start} - {clash.period_end}",
                {
                    "invoice": clash.number,
                    "invoice_period": f"{clash.period_start}/{clash.period_end}",
                },
            )
        )
    accounts = [a for a in accounts if a.pk not in clashes]
    per_account: dict[int, list[WindowUsage]] = defaultdict(list)
    for item in window_usage(meter_windows(accounts, start, end)).values():
        per_account[item.window.account_id].append(item)
    # Only accounts whose recent periods hold an estimate, or lines billing them from other
    # documents, need re-pricing (`corrections` decides precisely).
    lookback = add_months(start, -setting("BILLING_CORRECTION_LOOKBACK"))
    to_correct = set(
        InvoiceLine.objects.filter(
            Q(estimated=True) | ~Q(kind=LineKind.ENERGY),
            Q(invoice__period_end__lte=start, invoice__period_end__gt=lookback)
            | Q(corrects__period_end__lte=start, corrects__period_end__gt=lookback),
            invoice__account__in=accounts,
            unit="kWh",
        ).values_list("invoice__account_id", flat=True)
    )
    versions = _versions_of(accounts)
    fixes, errors = corrections_for([a for a in accounts if a.pk in to_correct], start, versions)
    documents = []
    for account in accounts:
        try:
            if account.pk in errors:
                raise errors[account.pk]
            draft = compute(
                account, start, end, per_account.get(account.pk, []), versions[account.tariff_id]
            )
        except BillingError as exc:
            failures.append(Failure(account, "billing.account_failed", str(exc), {}))
            continue
        documents.append(
            Document(
                account=account,
                kind=InvoiceKind.INVOICE,
                start=start,
                end=end,
                lines=draft.lines + fixes.get(account.pk, []),
                reads=draft.reads,
                run=run,
            )
        )
    return documents, failures


def plan_run(
    start: date, end: date | None = None, *, now: datetime, by: str, chunk_size: int | None = None
) -> BillingRun:
    """Create the run of a period (or take it up again) and split its accounts into chunks of
    `chunk_size` by primary key. Taking a run up again adds chunks for accounts opened since
    and puts chunks that had failures back to pending (accounts since fixed get billed)."""
    end = end or add_months(start, 1)
    if not 1 <= start.day <= 28 or end <= start:
        raise BillingError(f"not a billing period: {start} - {end}")
    chunk_size = chunk_size or setting("BILLING_BATCH_SIZE")
    with transaction.atomic():
        run, created = BillingRun.objects.get_or_create(
            period_start=start, period_end=end, defaults={"started_at": now, "started_by": by}
        )
        run = BillingRun.objects.select_for_update().get(pk=run.pk)
        planned = run.chunks.order_by("-number").first()
        ids = list(
            accounts_for_period(start, end)
            .filter(pk__gt=planned.last_account_id if planned else 0)
            .values_list("pk", flat=True)
        )
        first_number = planned.number + 1 if planned else 1
        BillingChunk.objects.bulk_create(
            BillingChunk(
                run=run,
                number=first_number + index,
                first_account_id=part[0],
                last_account_id=part[-1],
                accounts=len(part),
            )
            for index, offset in enumerate(range(0, len(ids), chunk_size))
            for part in [ids[offset : offset + chunk_size]]
        )
        run.chunks.filter(status=ChunkStatus.DONE, failed__gt=0).update(status=ChunkStatus.PENDING)
        tally = run.chunks.aggregate(n_chunks=Count("pk"), n_accounts=Sum("accounts"))
        run.status, run.finished_at = RunStatus.RUNNING, None
        run.attempts += 1
        run.chunks_total, run.accounts_total = tally["n_chunks"], tally["n_accounts"] or 0
        run.save(
            update_fields=["status", "finished_at", "attempts", "chunks_total", "accounts_total"]
        )
        record(
            "billing.run_started",
            actor=by,
            target=f"billing-run:{run.pk}",
            details={
                "period": f"{start}/{end}",
                "attempt": run.attempts,
                "resumed": not created,
                "chunks": run.chunks_total,
            },
        )
    return run


def chunk_for_billing(chunk_id: int) -> QuerySet[BillingChunk]:
    """The chunk with its run, its row locked for the transaction. Only the chunk's row: locking
    the run's row too (FOR UPDATE locks every joined row) made the workers take their chunks
    one at a time."""
    return (
        BillingChunk.objects.select_for_update(of=("self",))
        .select_related("run")
        .filter(pk=chunk_id)
    )


def bill_chunk(chunk_id: int, *, now: datetime, by: str) -> BillingChunk:
    """Bill the accounts of one chunk not yet invoiced for the period, in one transaction under
    the chunk's row lock: a second worker handed the same chunk waits, then finds it done; a
    worker that dies leaves nothing half-written and the chunk pending for a retry. The
    unique constraint on (account, period) still refuses a second invoice to anyone else."""
    with transaction.atomic():
        chunk = chunk_for_billing(chunk_id).get()
        if chunk.status == ChunkStatus.DONE:
            return chunk
        run = chunk.run
        in_chunk = Q(pk__gte=chunk.first_account_id, pk__lte=chunk.last_account_id)
        accounts = list(accounts_for_period(run.period_start, run.period_end).filter(in_chunk))
        # Invoiced already (an earlier attempt, or by hand): looked up by the chunk's account
        # ids, not joined, so a plan made while the run fills the invoice table stays linear.
        invoiced = dict(
            Invoice.objects.filter(
                account_id__in=[account.pk for account in accounts],
                kind=InvoiceKind.INVOICE,
                period_start=run.period_start,
                period_end=run.period_end,
            ).values_list("account_id", "run_id")
        )
        accounts = [account for account in accounts if account.pk not in invoiced]
        documents, failures = _bill_accounts(accounts, run)
        write_documents(documents, now=now, by=by)
        for failure in failures:
            logger.warning(
                "account %s not billed for %s - %s: %s",
                failure.account,
                run.period_start,
                run.period_end,
                failure.reason,
            )
            record(
                failure.action,
                actor=by,
                target=f"billing-account:{failure.account.number}",
                outcome=Outcome.FAILURE,
                details={"run": run.pk, "error": failure.reason[:200], **failure.details},
            )
        chunk.status, chunk.finished_at = ChunkStatus.DONE, now
        chunk.attempts += 1
        chunk.failed = len(failures)
        chunk.invoices_issued = len(documents) + sum(
            1 for run_id in invoiced.values() if run_id == run.pk
        )
        chunk.save(update_fields=["status", "finished_at", "attempts", "failed", "invoices_issued"])
    return chunk


def finish_run(run_id: int, *, by: str) -> BillingRun:
    """The final tally: once every chunk is done, the run is completed (with errors if any
    account failed). Idempotent; while chunks are pending it only refreshes the counts."""
    with transaction.atomic():
        run = BillingRun.objects.select_for_update().get(pk=run_id)
        tally = run.chunks.aggregate(
            n_pending=Count("pk", filter=Q(status=ChunkStatus.PENDING)),
            n_failed=Sum("failed"),
            n_accounts=Sum("accounts"),
        )
        was_running = run.status == RunStatus.RUNNING
        run.failed = tally["n_failed"] or 0
        run.accounts_total = tally["n_accounts"] or 0
        run.invoices_issued = Invoice.objects.filter(run=run, kind=InvoiceKind.INVOICE).count()
        fields = ["failed", "accounts_total", "invoices_issued"]
        if tally["n_pending"] == 0:
            run.status = RunStatus.COMPLETED_WITH_ERRORS if run.failed else RunStatus.COMPLETED
            run.finished_at = timezone.now()
            fields += ["status", "finished_at"]
        run.save(update_fields=fields)
        if was_running and run.status != RunStatus.RUNNING:
            record(
                "billing.run_completed",
                actor=by,
                target=f"billing-run:{run.pk}",
                outcome=Outcome.FAILURE if run.failed else Outcome.SUCCESS,
                details={
                    "accounts": run.accounts_total,
                    "issued": run.invoices_issued,
                    "failed": run.failed,
                },
            )
    return run


# The run's tasks, queued by name: `tasks` imports this module, so this one may not import it
# (`billing.apps` registers the tasks in every process that may run them eagerly).
BILL_CHUNK = "billing.bill_chunk"
FINISH_RUN = "billing.finish_run"


def start_billing_run(
    start: date, end: date | None = None, *, by: str, queue: str | None = None
) -> BillingRun:
    """Start (or resume) the run of a period on the Celery workers: its pending chunks as a
    chord whose callback is the final tally. The entry point for the staff UI and the beat;
    `selectors.run_progress` reports how far it got. `queue` routes every task of the run."""
    run = plan_run(start, end, now=timezone.now(), by=by)
    pending = list(
        run.chunks.filter(status=ChunkStatus.PENDING)
        .order_by("number")
        .values_list("pk", flat=True)
    )
    options = {"queue": queue} if queue else {}
    tally = current_app.signature(FINISH_RUN, kwargs={"run_id": run.pk, "by": by}, **options)
    if pending:
        header = group(
            current_app.signature(BILL_CHUNK, kwargs={"chunk_id": pk, "by": by}, **options)
            for pk in pending
        )
        transaction.on_commit(lambda: chord(header)(tally))
    else:
        transaction.on_commit(lambda: tally.apply_async())
    return run


def run_billing(
    start: date,
    end: date | None = None,
    *,
    now: datetime,
    by: str,
    progress: Callable[[BillingRun, int, int], None] | None = None,
    batch_size: int | None = None,
) -> BillingRun:
    """Bill every account of the period in this process, chunk after chunk (the code path of
    `manage.py run_billing`; the workers take the same chunks in parallel). Idempotent and
    resumable like the run on the workers: each chunk commits on its own."""
    run = plan_run(start, end, now=now, by=by, chunk_size=batch_size)
    done = sum(run.chunks.filter(status=ChunkStatus.DONE).values_list("accounts", flat=True))
    for chunk in run.chunks.filter(status=ChunkStatus.PENDING).order_by("number"):
        bill_chunk(chunk.pk, now=now, by=by)
        done += chunk.accounts
        if progress:
            progress(run, done, run.accounts_total)
    return finish_run(run.pk, by=by)


def due_periods(today: date) -> list[tuple[date, date]]:
    """Periods a daily beat should (re)run on local date `today`: those that ended
    BILLING_RUN_DELAY_DAYS ago (so the last days' readings have arrived) and the two days
    before, so a missed or crashed run is resumed."""
    result = []
    for lag in range(setting("BILLING_RUN_DELAY_DAYS"), setting("BILLING_RUN_DELAY_DAYS") + 3):
        end = today - timedelta(days=lag)
        if end.day <= 28:
            result.append((add_months(end, -1), end))
    return result
