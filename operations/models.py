"""Runs staff start from the operations pages (a billing run, a detector scan), and the daily
read success rate the fleet-health chart shows."""

from django.conf import settings
from django.db import models
from django.db.models import Q


class RunKind(models.TextChoices):
    BILLING = "billing", "Billing run"
    SCAN = "scan", "Detector scan"


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    FINISHED = "finished", "Finished"
    FAILED = "failed", "Failed"


ACTIVE_RUN_STATES = (RunStatus.QUEUED, RunStatus.RUNNING)


class StaffRun(models.Model):
    """One run a member of staff started; at most one of each kind is queued or running."""

    kind = models.CharField(max_length=16, choices=RunKind.choices)
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.QUEUED)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    requested_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # What the run works on, e.g. {"period_start": "2026-11-01"}.
    parameters = models.JSONField(default=dict, blank=True)
    done = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0)
    message = models.CharField(max_length=255, blank=True)
    result = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-requested_at"]
        permissions = [("start_scan", "Can start a detector scan")]
        constraints = [
            models.UniqueConstraint(
                fields=["kind"],
                condition=Q(status__in=ACTIVE_RUN_STATES),
                name="operations_one_active_run_per_kind",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk} ({self.status})"

    @property
    def active(self) -> bool:
        return self.status in ACTIVE_RUN_STATES

    @property
    def percent(self) -> int:
        return round(100 * self.done / self.total) if self.total else 0


class DailyReadRate(models.Model):
    """For one UTC day: how many of the active meters sent all 24 hourly readings."""

    day = models.DateField(unique=True)
    active_meters = models.PositiveIntegerField()
    complete_meters = models.PositiveIntegerField()
    computed_at = models.DateTimeField()

    class Meta:
        ordering = ["day"]

    def __str__(self) -> str:
        return f"{self.day}: {self.complete_meters}/{self.active_meters}"

    @property
    def rate(self) -> float:
        return self.complete_meters / self.active_meters if self.active_meters else 0.0

    @property
    def percent(self) -> int:
        return round(100 * self.rate)

    @property
    def missing_percent(self) -> int:
        return 100 - self.percent
