"""Writes of the revenue-protection app: scans, cases, dispatch, visits and verified uploads."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import IntegrityError, connection, transaction

from accounts.roles import FIELD_ENGINEER
from audit.caps import check_cap
from audit.models import Outcome
from audit.services import record
from devices.models import Meter
from meteragent.export import ExportError, verify_export
from readings.models import Source
from readings.services import datetime_to_hour, hour_to_datetime, store_readings

from . import conf, detectors
from .models import (
    CASE_TRANSITIONS,
    Absence,
    Case,
    CaseEvent,
    CaseState,
    ReadingsUpload,
    Resolution,
    WorkOrder,
    WorkOrderState,
)

logger = logging.getLogger(__name__)

Actor = AbstractBaseUser | str


class FraudError(Exception):
    """A refused request, with a message fit to show to the member of staff."""


def _actor_label(actor: Actor) -> str:
    return actor.get_username() if isinstance(actor, AbstractBaseUser) else actor


def _actor_user(actor: Actor) -> AbstractBaseUser | None:
    return actor if isinstance(actor, AbstractBaseUser) else None


# --- Scans ---


@dataclass
class DetectorRun:
    name: str
    findings: int = 0
    opened: int = 0
    updated: int = 0
    suppressed: int = 0
    detect_seconds: float = 0.0
    apply_seconds: float = 0.0


@dataclass
class ScanReport:
    now: datetime
    daily_seconds: float = 0.0
    runs: list[DetectorRun] = field(default_factory=list)

    @property
    def opened(self) -> int:
        return sum(run.opened for run in self.runs)


def run_scan(
    *,
    now: datetime,
    only: Iterable[str] | None = None,
    actor: Actor = "beat",
    progress: Callable[[str], None] | None = None,
) -> ScanReport:
    """Run the enabled detectors (or `only` these) and open or refresh cases from their
    findings. Safe to repeat: a finding refreshes the active case of its meter and cause."""
    now = now.astimezone(UTC)
    report = ScanReport(now=now)
    say = progress or (lambda message: None)
    wanted = set(only) if only else None
    chosen = [
        d
        for d in detectors.DETECTORS
        if (wanted is None or d.name in wanted)
        and (wanted is not None or detectors.config(d.name)["enabled"])
    ]
    found: list[tuple[DetectorRun, list[detectors.Finding]]] = []
    # The temporary daily table lives in this transaction; cases are written after it.
    with transaction.atomic(), connection.cursor() as cursor:
        if any(d.uses_daily for d in chosen):
            say(f"daily consumption over {detectors.daily_days_needed()} days …")
            started = time.perf_counter()
            detectors.prepare_daily(cursor, now=now)
            report.daily_seconds = time.perf_counter() - started
            say(f"  done in {report.daily_seconds:.2f} s")
        for detector in chosen:
            run = DetectorRun(detector.name)
            say(f"{detector.name} …")
            started = time.perf_counter()
            findings = detector.run(cursor, now=now)
            run.detect_seconds = time.perf_counter() - started
            run.findings = len(findings)
            found.append((run, findings))
            say(f"  {len(findings)} finding(s) in {run.detect_seconds:.2f} s")
    for run, findings in found:
        started = time.perf_counter()
        for finding in findings:
            outcome = apply_finding(finding, now=now)
            setattr(run, outcome, getattr(run, outcome) + 1)
        run.apply_seconds = time.perf_counter() - started
        report.runs.append(run)
    record(
        "fraud.scan",
        actor=actor,
        target="detectors",
        details={run.name: {"findings": run.findings, "opened": run.opened} for run in report.runs},
    )
    return report


def apply_finding(finding: detectors.Finding, *, now: datetime) -> str:
    """Open a case for the finding, refresh the active one, or skip it when a case of that
    meter and cause was closed after the finding's newest datum. Returns "opened", "updated"
    or "suppressed"."""
    with transaction.atomic():
        case = (
            Case.objects.select_for_update()
            .filter(meter_id=finding.meter_id, cause=finding.cause)
            .exclude(state=CaseState.CLOSED)
            .first()
        )
        if case is not None:
            case.evidence, case.last_detected_at = finding.evidence, now
            fields = ["evidence", "last_detected_at"]
            if case.state == CaseState.OPEN:
                case.summary = finding.summary[:255]
                case.severity = max(case.severity, finding.severity)
                fields += ["summary", "severity"]
            case.save(update_fields=fields)
            return "updated"
        if Case.objects.filter(
            meter_id=finding.meter_id, cause=finding.cause, closed_at__gte=finding.since
        ).exists():
            return "suppressed"
        try:
            with transaction.atomic():
                case = Case.objects.create(
                    meter_id=finding.meter_id,
                    cause=finding.cause,
                    severity=finding.severity,
                    summary=finding.summary[:255],
                    evidence=finding.evidence,
                    opened_at=now,
                    last_detected_at=now,
                )
        except IntegrityError:
            return "updated"  # opened concurrently by another scan
        CaseEvent.objects.create(
            case=case, at=now, actor_label="detector", to_state=CaseState.OPEN, note=case.summary
        )
        number = Meter.objects.filter(pk=finding.meter_id).values_list("number", flat=True)[0]
        record(
            "fraud.case_opened",
            actor="detector",
            target=f"case:{case.pk}",
            outcome=Outcome.ALERT,
            details={
                "meter": number,
                "cause": finding.cause,
                "severity": finding.severity,
                "summary": case.summary,
            },
        )
    return "opened"


# --- Absences declared by customers ---

MAX_ABSENCE_DAYS = 92
MAX_ABSENCE_LEAD_DAYS = 365


def declare_absence(
    meter: Meter,
    *,
    by: AbstractBaseUser,
    first_day: date,
    last_day: date,
    now: datetime,
    note: str = "",
) -> Absence:
    """Record that nobody will be home at the meter's premises from first_day to last_day.
    The caller has checked that `by` occupies the meter. Refuses (FraudError, logged and
    audited) a period that ends before it starts, lies in the past, is longer than three months
    or starts more than a year ahead."""
    today = now.date()
    problem = ""
    if last_day < first_day:
        problem = "The last day away must not be before the first."
    elif last_day < today - timedelta(days=1):
        problem = "That period is already over."
    elif (last_day - first_day).days + 1 > MAX_ABSENCE_DAYS:
        problem = f"Declare at most {MAX_ABSENCE_DAYS} days at a time."
    elif (first_day - today).days > MAX_ABSENCE_LEAD_DAYS:
        problem = "Declare an absence at most a year ahead."
    if problem:
        logger.info("absence refused for meter %s: %s", meter.number, problem)
        record(
            "fraud.absence_refused",
            actor=by,
            target=f"meter:{meter.number}",
            outcome=Outcome.DENIED,
            details={"reason": problem},
        )
        raise FraudError(problem)
    absence = Absence.objects.create(
        meter=meter,
        declared_by=by,
        first_day=first_day,
        last_day=last_day,
        note=note,
        declared_at=now,
    )
    record(
        "fraud.absence_declared",
        actor=by,
        target=f"meter:{meter.number}",
        details={"first_day": first_day.isoformat(), "last_day": last_day.isoformat()},
    )
    return absence


# --- Case state machine and notes ---


def transition(
    case: Case,
    to_state: str,
    *,
    by: Actor,
    now: datetime,
    resolution: str = "",
    note: str = "",
) -> Case:
    """Move a case along the state machine (models.CASE_TRANSITIONS), audited."""
    with transaction.atomic():
        case = Case.objects.select_for_update().get(pk=case.pk)
        if to_state not in CASE_TRANSITIONS[case.state]:
            raise FraudError(
                f"A case that is {case.get_state_display().lower()} cannot become {to_state}."
            )
        if to_state == CaseState.RESOLVED and resolution not in Resolution.values:
            raise FraudError("Choose a resolution: no fault, tamper confirmed or meter fault.")
        from_state = case.state
        case.state = to_state
        if to_state == CaseState.RESOLVED:
            case.resolution = resolution
        elif to_state in (CaseState.OPEN, CaseState.DISPATCHED):
            case.resolution = ""
        if to_state == CaseState.CLOSED:
            case.closed_at = now
        case.save(update_fields=["state", "resolution", "closed_at"])
        CaseEvent.objects.create(
            case=case,
            at=now,
            actor=_actor_user(by),
            actor_label=_actor_label(by),
            from_state=from_state,
            to_state=to_state,
            note=note[:4000],
        )
        record(
            f"fraud.case_{to_state}",
            actor=by,
            target=f"case:{case.pk}",
            details={"from": from_state, "resolution": case.resolution, "note": note[:200]},
        )
    return case


def add_note(case: Case, text: str, *, by: Actor, now: datetime) -> CaseEvent:
    text = text.strip()
    if not text:
        raise FraudError("A note cannot be empty.")
    event = CaseEvent.objects.create(
        case=case, at=now, actor=_actor_user(by), actor_label=_actor_label(by), note=text[:4000]
    )
    record("fraud.case_note", actor=by, target=f"case:{case.pk}", details={"length": len(text)})
    return event


# --- Dispatch ---


def is_field_engineer(user: AbstractBaseUser) -> bool:
    return user.is_active and user.is_staff and user.groups.filter(name=FIELD_ENGINEER).exists()


def dispatch(
    case: Case, engineer: AbstractBaseUser, *, by: AbstractBaseUser, now: datetime, note: str = ""
) -> WorkOrder:
    """Send a field engineer to the case's meter. Over a dispatch cap (S12: fleet-wide per day,
    or per engineer per day) the work order waits for a second approver instead."""
    if not is_field_engineer(engineer):
        raise FraudError("Dispatch only to an active field engineer.")
    with transaction.atomic():
        case = Case.objects.select_for_update().get(pk=case.pk)
        if case.state != CaseState.OPEN:
            raise FraudError("Only an open case can be dispatched.")
        held = []
        # The fleet cap's lock, held until this transaction commits the work order, serialises
        # the per-engineer count too: concurrent dispatches cannot both slip under either cap.
        over_fleet_cap = check_cap("fraud.dispatched", actor=by)
        recent = WorkOrder.objects.filter(
            engineer=engineer, created_at__gte=now - timedelta(days=1)
        ).exclude(state=WorkOrderState.CANCELLED)
        engineer_cap = conf.setting("DISPATCHES_PER_ENGINEER_PER_DAY")
        if recent.count() + 1 > engineer_cap:
            held.append(f"more than {engineer_cap} dispatches to this engineer in 24 hours")
        if over_fleet_cap is not None:
            held.append(str(over_fleet_cap))
        order = WorkOrder(
            case=case,
            engineer=engineer,
            created_by=by,
            created_at=now,
            instructions=note[:4000],
            held_because=held,
            state=WorkOrderState.AWAITING_APPROVAL if held else WorkOrderState.ASSIGNED,
        )
        try:
            with transaction.atomic():
                order.save()
        except IntegrityError:
            raise FraudError("This case already has an open work order.") from None
        if held:
            record(
                "fraud.dispatch_held",
                actor=by,
                target=f"workorder:{order.pk}",
                outcome=Outcome.ALERT,
                details={"case": case.pk, "engineer": engineer.get_username(), "held": held},
            )
        else:
            _assign(order, by=by, now=now)
    return order


def _assign(order: WorkOrder, *, by: Actor, now: datetime) -> None:
    transition(order.case, CaseState.DISPATCHED, by=by, now=now, note=f"work order {order.pk}")
    record(
        "fraud.dispatched",
        actor=by,
        target=f"workorder:{order.pk}",
        details={"case": order.case_id, "engineer": order.engineer.get_username()},
    )


def _lock_order(order: WorkOrder) -> WorkOrder:
    """Lock the work order's case, then the order. Every change to a case locks the case before
    it writes its audit record (which locks the chain head); taking the case first here too
    keeps one lock order, so a dispatch and an approval of the same case cannot deadlock."""
    case = Case.objects.select_for_update().get(pk=order.case_id)
    order = WorkOrder.objects.select_for_update().get(pk=order.pk)
    order.case = case
    return order


def approve(order: WorkOrder, *, by: AbstractBaseUser, now: datetime) -> WorkOrder:
    """The second approver releases a held dispatch: someone other than who dispatched it."""
    with transaction.atomic():
        order = _lock_order(order)
        if order.state != WorkOrderState.AWAITING_APPROVAL:
            raise FraudError("This work order is not waiting for approval.")
        if by.pk == order.created_by_id:
            record(
                "fraud.dispatch_approve_refused",
                actor=by,
                target=f"workorder:{order.pk}",
                outcome=Outcome.DENIED,
                details={"reason": "approver is the dispatcher"},
            )
            raise FraudError("A second member of staff must approve this dispatch.")
        order.state, order.approved_by, order.approved_at = WorkOrderState.ASSIGNED, by, now
        order.save(update_fields=["state", "approved_by", "approved_at"])
        record(
            "fraud.dispatch_approved",
            actor=by,
            target=f"workorder:{order.pk}",
            details={"case": order.case_id, "held": order.held_because},
        )
        _assign(order, by=by, now=now)
    return order


def cancel(order: WorkOrder, *, by: AbstractBaseUser, now: datetime, note: str = "") -> WorkOrder:
    with transaction.atomic():
        order = _lock_order(order)
        if order.state not in (WorkOrderState.AWAITING_APPROVAL, WorkOrderState.ASSIGNED):
            raise FraudError("Only an open work order can be cancelled.")
        was_assigned = order.state == WorkOrderState.ASSIGNED
        order.state = WorkOrderState.CANCELLED
        order.save(update_fields=["state"])
        record("fraud.dispatch_cancelled", actor=by, target=f"workorder:{order.pk}")
        if was_assigned and order.case.state == CaseState.DISPATCHED:
            transition(order.case, CaseState.OPEN, by=by, now=now, note=note or "cancelled")
    return order


def record_visit(
    order: WorkOrder, *, by: AbstractBaseUser, outcome: str, notes: str, now: datetime
) -> WorkOrder:
    """The engineer's visit outcome; it resolves the case (revenue protection then closes it)."""
    if outcome not in Resolution.values:
        raise FraudError("Choose the visit outcome.")
    with transaction.atomic():
        order = _lock_order(order)
        if order.engineer_id != by.pk:
            raise FraudError("This is not your job.")
        if order.state != WorkOrderState.ASSIGNED:
            raise FraudError("This job is not open.")
        order.state, order.outcome = WorkOrderState.VISITED, outcome
        order.outcome_notes, order.visited_at = notes.strip()[:4000], now
        order.save(update_fields=["state", "outcome", "outcome_notes", "visited_at"])
        record(
            "fraud.visit_recorded",
            actor=by,
            target=f"workorder:{order.pk}",
            details={"case": order.case_id, "outcome": outcome},
        )
        if order.case.state == CaseState.DISPATCHED:
            transition(
                order.case, CaseState.RESOLVED, by=by, now=now, resolution=outcome, note=notes
            )
    return order


# --- Verified SD-card uploads ---


def _refuse(order: WorkOrder, by: AbstractBaseUser, reason: str, **details) -> FraudError:
    logger.warning("refused readings upload for work order %s: %s", order.pk, reason)
    record(
        "fraud.upload_refused",
        actor=by,
        target=f"workorder:{order.pk}",
        outcome=Outcome.DENIED,
        details={"reason": reason, **details},
    )
    return FraudError(f"Upload refused: {reason}. Nothing was stored.")


def accept_upload(
    order: WorkOrder, data: bytes, *, by: AbstractBaseUser, now: datetime
) -> ReadingsUpload:
    """Verify a meter's signed readings export against the meter's registered key, then merge
    its readings: gaps are filled, differences with stored (SMS) readings go to
    ReadingConflict. A refused upload stores nothing."""
    meter = order.case.meter
    digest = hashlib.sha256(data).hexdigest()
    if order.engineer_id != by.pk or order.state not in (
        WorkOrderState.ASSIGNED,
        WorkOrderState.VISITED,
    ):
        raise _refuse(order, by, "this job is not open to you", sha256=digest)
    if len(data) > conf.setting("UPLOAD_MAX_BYTES"):
        raise _refuse(order, by, "the file is larger than an export can be", size=len(data))
    if not meter.signing_public_key:
        raise _refuse(order, by, "the meter has no registered signing key")
    try:
        export = verify_export(data, bytes(meter.signing_public_key), meter_number=meter.number)
    except ExportError as exc:
        raise _refuse(order, by, str(exc), sha256=digest, size=len(data)) from None
    readings = export.readings
    hours = [hour for hour, _ in readings]
    latest_allowed = datetime_to_hour(now) + 1
    if len(set(hours)) != len(hours):
        raise _refuse(order, by, "the export lists an hour twice", sha256=digest)
    if any(hour <= 0 or hour > latest_allowed or wh < 0 for hour, wh in readings):
        raise _refuse(order, by, "the export has readings out of range", sha256=digest)
    with transaction.atomic():
        Meter.objects.select_for_update().filter(pk=meter.pk).first()  # the readings writer lock
        result = store_readings(meter.pk, readings, received_at=now, source=Source.UPLOAD)
        header = {k: v for k, v in export.body.items() if k not in ("readings", "public_key")}
        upload = ReadingsUpload.objects.create(
            work_order=order,
            meter=meter,
            uploaded_by=by,
            uploaded_at=now,
            sha256=digest,
            size=len(data),
            readings=len(readings),
            inserted=result.inserted,
            duplicates=result.duplicates,
            conflicts=result.conflicts,
            from_hour=hour_to_datetime(min(hours)) if hours else None,
            to_hour=hour_to_datetime(max(hours)) if hours else None,
            store_ok=export.store_ok,
            header=header,
        )
        record(
            "fraud.upload_verified",
            actor=by,
            target=f"workorder:{order.pk}",
            outcome=Outcome.ALERT if result.conflicts or not export.store_ok else Outcome.SUCCESS,
            details={
                "meter": meter.number,
                "sha256": digest,
                "readings": len(readings),
                "inserted": result.inserted,
                "duplicates": result.duplicates,
                "conflicts": result.conflicts,
                "store_ok": export.store_ok,
            },
        )
    return upload
