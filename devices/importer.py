"""Import of a manufacturer's manifest (CSV): validated whole, imported all or nothing."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import transaction

from audit.services import record
from utility.pg import advisory_xact_lock

from .identifiers import (
    normalise_meter_number,
    normalise_msisdn,
    validate_iccid,
    validate_meter_number,
    validate_msisdn,
)
from .models import Meter, Sim

REQUIRED_COLUMNS = ("meter_number", "msisdn", "iccid")
MAX_FILE_BYTES = 20 * 1024 * 1024
MAX_ROWS = 200_000
MAX_TEXT = 80
BATCH = 2000


@dataclass
class RowResult:
    line: int
    meter_number: str
    errors: list[str] = field(default_factory=list)


@dataclass
class ImportReport:
    rows: list[RowResult]
    file_errors: list[str]
    imported: int = 0
    dry_run: bool = True

    @property
    def ok(self) -> bool:
        return not self.file_errors and not any(r.errors for r in self.rows)

    @property
    def bad_rows(self) -> list[RowResult]:
        return [r for r in self.rows if r.errors]


@dataclass
class _Row:
    line: int
    number: str
    msisdn: str
    iccid: str
    manufacturer: str
    model: str
    batch: str


def _clean_text(value: str | None) -> str:
    text = "".join(ch for ch in (value or "") if ch.isprintable()).strip()
    return text[:MAX_TEXT]


def _decode(data: bytes) -> str:
    if len(data) > MAX_FILE_BYTES:
        raise ValueError(f"the file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValueError("the file is not UTF-8 text") from None


def parse_manifest(
    data: bytes, *, progress: Callable[[int], None] | None = None, against_database: bool = True
) -> tuple[list[_Row], ImportReport]:
    """Validate every row: formats, duplicates within the file and (unless told otherwise)
    against the database."""
    report = ImportReport(rows=[], file_errors=[])
    try:
        text = _decode(data)
    except ValueError as exc:
        report.file_errors.append(str(exc))
        return [], report
    reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)
    columns = {c.strip().lower() for c in (reader.fieldnames or [])}
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        report.file_errors.append(f"missing column(s): {', '.join(missing)}")
        return [], report

    rows: list[_Row] = []
    seen: dict[str, dict[str, int]] = {"number": {}, "msisdn": {}, "iccid": {}}
    try:
        for raw in reader:
            if len(rows) >= MAX_ROWS:
                report.file_errors.append(f"more than {MAX_ROWS} rows")
                return [], report
            values = {(k or "").strip().lower(): (v or "") for k, v in raw.items()}
            row = _Row(
                line=reader.line_num,
                number=normalise_meter_number(values.get("meter_number", "")),
                msisdn=normalise_msisdn(values.get("msisdn", "")),
                iccid=values.get("iccid", "").strip(),
                manufacturer=_clean_text(values.get("manufacturer")),
                model=_clean_text(values.get("model")),
                batch=_clean_text(values.get("batch")),
            )
            result = RowResult(row.line, row.number)
            for validate, value in (
                (validate_meter_number, row.number),
                (validate_msisdn, row.msisdn),
                (validate_iccid, row.iccid),
            ):
                try:
                    validate(value)
                except ValidationError as exc:
                    result.errors.extend(exc.messages)
            for kind, value in (
                ("number", row.number),
                ("msisdn", row.msisdn),
                ("iccid", row.iccid),
            ):
                if value in seen[kind]:
                    result.errors.append(f"duplicate {kind} (also on line {seen[kind][value]})")
                else:
                    seen[kind][value] = row.line
            rows.append(row)
            report.rows.append(result)
            if progress and len(rows) % BATCH == 0:
                progress(len(rows))
    except csv.Error as exc:
        report.file_errors.append(f"line {reader.line_num}: not valid CSV ({exc})")
        return [], report
    if not rows:
        report.file_errors.append("the file has no rows")
        return [], report

    if against_database:
        _check_against_database(rows, report)
    return rows, report


def _check_against_database(rows: list[_Row], report: ImportReport) -> None:
    by_line = {r.line: r for r in report.rows}
    for start in range(0, len(rows), BATCH):
        chunk = rows[start : start + BATCH]
        numbers = set(
            Meter.objects.filter(number__in=[r.number for r in chunk]).values_list(
                "number", flat=True
            )
        )
        msisdns = set(
            Sim.objects.filter(msisdn__in=[r.msisdn for r in chunk]).values_list(
                "msisdn", flat=True
            )
        )
        iccids = set(
            Sim.objects.filter(iccid__in=[r.iccid for r in chunk]).values_list("iccid", flat=True)
        )
        for row in chunk:
            errors = by_line[row.line].errors
            if row.number in numbers:
                errors.append("meter number already registered")
            if row.msisdn in msisdns:
                errors.append("MSISDN already registered")
            if row.iccid in iccids:
                errors.append("ICCID already registered")


def import_manifest(
    data: bytes,
    *,
    by,
    dry_run: bool,
    filename: str = "",
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Validate the manifest; unless `dry_run`, register every meter and SIM in one
    transaction — or none, if any row is bad."""
    rows, report = parse_manifest(data, progress=progress, against_database=dry_run)
    report.dry_run = dry_run
    if dry_run or report.file_errors:
        return report
    with transaction.atomic():
        # Imports one at a time, each checked against what the one before it registered: two
        # overlapping manifests at once get the report a second import would, not a crash.
        advisory_xact_lock("devices.import_manifest")
        _check_against_database(rows, report)
        if not report.ok:
            return report
        for start in range(0, len(rows), BATCH):
            chunk = rows[start : start + BATCH]
            meters = Meter.objects.bulk_create(
                Meter(number=r.number, manufacturer=r.manufacturer, model=r.model, batch=r.batch)
                for r in chunk
            )
            Sim.objects.bulk_create(
                Sim(msisdn=r.msisdn, iccid=r.iccid, meter=meter)
                for r, meter in zip(chunk, meters, strict=True)
            )
            report.imported += len(chunk)
            if progress:
                progress(report.imported)
        record(
            "devices.manifest_imported",
            actor=by,
            target=filename[:200],
            details={"meters": report.imported},
        )
    return report
