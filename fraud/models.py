"""Revenue protection: cases raised by the detectors, field work orders, and verified SD-card
uploads."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class Cause(models.TextChoices):
    CONSUMPTION_DROP = "consumption_drop", "Sustained drop against the meter's own baseline"
    LOAD_SHAPE = "load_shape", "Daily load pattern changed against the meter's own history"
    PEER_COMPARISON = "peer_comparison", "Use fell against similar households in the fleet"
    ZERO_USE = "zero_use", "Sustained zero use at an occupied premises"
    SILENT = "silent", "Meter silent beyond its schedule"
    BACKWARDS = "backwards", "Cumulative reading went backwards"
    AUTH_FAILURES = "auth_failures", "Burst of failed authentication or replays"
    TAMPER = "tamper", "Tamper or service events"
    CLOCK_STEP = "clock_step", "Large clock step"


class Severity(models.IntegerChoices):
    LOW = 1, "Low"
    MEDIUM = 2, "Medium"
    HIGH = 3, "High"
    CRITICAL = 4, "Critical"


class CaseState(models.TextChoices):
    OPEN = "open", "Open"
    DISPATCHED = "dispatched", "Engineer dispatched"
    RESOLVED = "resolved", "Resolved"
    CLOSED = "closed", "Closed"


class Resolution(models.TextChoices):
    NO_FAULT = "no_fault", "No fault found"
    TAMPER_CONFIRMED = "tamper_confirmed", "Tamper confirmed"
    METER_FAULT = "meter_fault", "Meter fault"


# The audited state machine: which state may follow which. Closed is final; a dispatched case
# goes back to open when its work order is cancelled; a case may be resolved at the desk.
CASE_TRANSITIONS: dict[str, frozenset[str]] = {
    CaseState.OPEN: frozenset({CaseState.DISPATCHED, CaseState.RESOLVED}),
    CaseState.DISPATCHED: frozenset({CaseState.OPEN, CaseState.RESOLVED}),
    CaseState.RESOLVED: frozenset({CaseState.CLOSED}),
    CaseState.CLOSED: frozenset(),
}
ACTIVE_CASE_STATES = (CaseState.OPEN, CaseState.DISPATCHED, CaseState.RESOLVED)


class Case(models.Model):
    """Suspected revenue loss or meter trouble at one meter, for one cause."""

    meter = models.ForeignKey("devices.Meter", on_delete=models.PROTECT, related_name="+")
    cause = models.CharField(max_length=32, choices=Cause.choices)
    severity = models.PositiveSmallIntegerField(choices=Severity.choices)
    state = models.CharField(max_length=16, choices=CaseState.choices, default=CaseState.OPEN)
    resolution = models.CharField(max_length=32, choices=Resolution.choices, blank=True)
    summary = models.CharField(max_length=255)
    # What the detector saw (series for the chart, figures, thresholds), as of its last run.
    evidence = models.JSONField(default=dict)
    opened_at = models.DateTimeField()
    last_detected_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        permissions = [
            ("work_case", "Can add notes to and resolve or close revenue-protection cases"),
            ("dispatch_engineer", "Can dispatch a field engineer to a case"),
            ("approve_dispatch", "Can approve a dispatch held by an anomaly cap"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["meter", "cause"],
                condition=~Q(state="closed"),
                name="fraud_one_active_case_per_meter_cause",
            ),
            models.CheckConstraint(
                condition=Q(state__in=["open", "dispatched"], resolution="")
                | Q(state__in=["resolved", "closed"]),
                name="fraud_case_resolution_only_when_resolved",
            ),
        ]
        indexes = [
            models.Index(fields=["state", "-severity", "-opened_at"]),
            models.Index(fields=["meter", "cause", "-closed_at"]),
        ]

    def __str__(self) -> str:
        return f"case {self.pk}: {self.get_cause_display()} ({self.state})"


class CaseEvent(models.Model):
    """The case's history: every state change and note, by whom (also in the audit log)."""

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="history")
    at = models.DateTimeField()
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    actor_label = models.CharField(max_length=254)
    from_state = models.CharField(max_length=16, blank=True)
    to_state = models.CharField(max_length=16, blank=True)
    note = models.TextField(blank=True, max_length=4000)

    class Meta:
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return f"case {self.case_id} {self.from_state}→{self.to_state} by {self.actor_label}"


class WorkOrderState(models.TextChoices):
    AWAITING_APPROVAL = "awaiting_approval", "Awaiting a second approver (anomaly cap)"
    ASSIGNED = "assigned", "Assigned to the engineer"
    VISITED = "visited", "Visited"
    CANCELLED = "cancelled", "Cancelled"


class WorkOrder(models.Model):
    """A visit to a meter's premises by one field engineer."""

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="work_orders")
    engineer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="work_orders"
    )
    state = models.CharField(max_length=20, choices=WorkOrderState.choices)
    instructions = models.TextField(blank=True, max_length=4000)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField()
    # Why the dispatch was held for a second approver (which caps it crossed), if it was.
    held_because = models.JSONField(default=list, blank=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    visited_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=32, choices=Resolution.choices, blank=True)
    outcome_notes = models.TextField(blank=True, max_length=4000)

    class Meta:
        permissions = [
            ("field_work", "Can see their own dispatch list, record visits and upload exports")
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["case"],
                condition=Q(state__in=["awaiting_approval", "assigned"]),
                name="fraud_one_open_work_order_per_case",
            )
        ]
        indexes = [
            models.Index(fields=["engineer", "state"]),
            models.Index(fields=["created_at"]),
        ]

    def __str__(self) -> str:
        return f"work order {self.pk} ({self.state})"


class ReadingsUpload(models.Model):
    """A verified SD-card export an engineer uploaded. Refused uploads leave no row here (they
    are in the audit log)."""

    work_order = models.ForeignKey(WorkOrder, on_delete=models.PROTECT, related_name="uploads")
    meter = models.ForeignKey("devices.Meter", on_delete=models.PROTECT, related_name="+")
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    uploaded_at = models.DateTimeField()
    sha256 = models.CharField(max_length=64)
    size = models.PositiveIntegerField()
    readings = models.PositiveIntegerField()
    inserted = models.PositiveIntegerField()
    duplicates = models.PositiveIntegerField()
    conflicts = models.PositiveIntegerField()
    from_hour = models.DateTimeField(null=True, blank=True)
    to_hour = models.DateTimeField(null=True, blank=True)
    # The meter's own verdict on its store (hash chain, record MACs) at export time.
    store_ok = models.BooleanField()
    header = models.JSONField(default=dict)

    def __str__(self) -> str:
        return f"upload {self.pk} for {self.meter_id} ({self.readings} readings)"


class Absence(models.Model):
    """A customer's declaration that nobody will be home at their meter's premises from
    `first_day` to `last_day` (UTC days, inclusive). The consumption detectors leave those days
    out of their statistics, never raise a High case over them, and every case shows them."""

    meter = models.ForeignKey("devices.Meter", on_delete=models.PROTECT, related_name="+")
    declared_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="declared_absences"
    )
    first_day = models.DateField()
    last_day = models.DateField()
    note = models.CharField(max_length=200, blank=True)
    declared_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["meter", "last_day"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(last_day__gte=models.F("first_day")), name="fraud_absence_dates"
            )
        ]

    def __str__(self) -> str:
        return f"absence at {self.meter_id} {self.first_day}..{self.last_day}"
