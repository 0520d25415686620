"""Hourly cumulative readings: one row per meter and hour, partitioned by month."""

from django.db import models


class Source(models.IntegerChoices):
    SMS = 1, "SMS"
    UPLOAD = 2, "Field upload"


class Reading(models.Model):
    """The meter's cumulative energy register (Wh) at the top of `hour` (UTC).

    The primary key is (meter, hour): a reading is stored once, and a later different value for
    the same hour goes to ReadingConflict instead of overwriting it.
    """

    pk = models.CompositePrimaryKey("meter", "hour")
    # No database-level foreign key: on the largest table of the system it costs a trigger per
    # row, about a fifth of ingest (docs/benchmarks.md). Readings are written only for a meter
    # the writer holds (ingest: under that meter's key lock), and meters are never deleted
    # (PROTECT, decommissioning instead).
    meter = models.ForeignKey(
        "devices.Meter", on_delete=models.PROTECT, related_name="+", db_constraint=False
    )
    hour = models.DateTimeField()
    wh = models.BigIntegerField()
    source = models.PositiveSmallIntegerField(choices=Source.choices, default=Source.SMS)
    received_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(wh__gte=0), name="reading_wh_gte_0")
        ]

    def __str__(self) -> str:
        return f"{self.meter_id} {self.hour:%Y-%m-%d %H:00} {self.wh} Wh"


class ReadingConflict(models.Model):
    """A reading that disagrees with the one already stored for that hour: kept aside, flagged
    for revenue protection, never silently merged."""

    meter = models.ForeignKey("devices.Meter", on_delete=models.PROTECT, related_name="+")
    hour = models.DateTimeField()
    stored_wh = models.BigIntegerField()
    received_wh = models.BigIntegerField()
    source = models.PositiveSmallIntegerField(choices=Source.choices)
    received_at = models.DateTimeField()
    resolved = models.BooleanField(default=False)

    class Meta:
        indexes = [models.Index(fields=["meter", "hour"])]
        constraints = [
            models.UniqueConstraint(
                fields=["meter", "hour", "received_wh"], name="reading_conflict_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.meter_id} {self.hour}: {self.stored_wh} ≠ {self.received_wh}"


class DailyReading(models.Model):
    """One meter's readings of one UTC day, kept after its hourly readings are deleted by the
    retention policy (readings/retention.py).

    The first and last register values keep totals across days exact; `usage_wh` is the sum of
    the register's rises between that day's consecutive hourly readings, as the portal counts
    usage (a step backwards counts nothing). `hours_with_usage` keeps which hours had a usage
    figure (bit i: the hour from i:00 UTC), so a day with a step backwards stays incomplete.
    """

    meter = models.ForeignKey("devices.Meter", on_delete=models.PROTECT, related_name="+")
    day = models.DateField()
    first_hour = models.DateTimeField()
    first_wh = models.BigIntegerField()
    last_hour = models.DateTimeField()
    last_wh = models.BigIntegerField()
    readings = models.PositiveSmallIntegerField()
    usage_wh = models.BigIntegerField()
    hours_with_usage = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["meter", "day"], name="daily_reading_once"),
            models.CheckConstraint(
                condition=models.Q(usage_wh__gte=0), name="daily_reading_usage_gte_0"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.meter_id} {self.day}: {self.usage_wh} Wh"


class RetentionAction(models.TextChoices):
    AGGREGATE = "aggregate", "Hourly readings summed into daily totals"
    DELETE = "delete", "Hourly readings deleted"
    FOLD_LATE = "fold_late", "Late hourly readings added to daily totals and deleted"
    DROP_PARTITION = "drop_partition", "Monthly table of hourly readings dropped"


class RetentionStep(models.Model):
    """One step of a retention run over the whole fleet, shown to customers in the portal (the
    audit log holds the same step, tamper-evident). `before` is the boundary: the step touched
    only hourly readings older than it."""

    ran_at = models.DateTimeField()
    action = models.CharField(max_length=20, choices=RetentionAction.choices)
    before = models.DateTimeField()
    count = models.BigIntegerField()
    detail = models.CharField(max_length=200, blank=True)

    class Meta:
        indexes = [models.Index(fields=["-ran_at"])]

    def __str__(self) -> str:
        return f"{self.ran_at:%Y-%m-%d} {self.action} before {self.before:%Y-%m-%d}: {self.count}"


# --- Customer API tokens and third-party consent ---


class TokenKind(models.TextChoices):
    PERSONAL = "personal", "Customer's own token"
    CONSENT = "consent", "Third-party consent"


class ApiToken(models.Model):
    """A bearer token for the readings API, stored as a SHA-256 hash (the token is 256 random
    bits, so a plain hash is enough; it is shown once).

    A consent token lets a named third party read one meter's readings from `data_from` (at most
    13 months before the grant) until it expires or is revoked, and never outside the granting
    customer's occupancy of the meter.
    """

    user = models.ForeignKey("accounts.User", on_delete=models.CASCADE, related_name="api_tokens")
    kind = models.CharField(max_length=10, choices=TokenKind.choices)
    name = models.CharField(max_length=100)  # the third party's name for consents
    meter = models.ForeignKey(
        "devices.Meter", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    scope = models.CharField(max_length=40, default="readings:read")
    prefix = models.CharField(max_length=16, unique=True)
    token_hash = models.CharField(max_length=64)
    data_from = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["user", "kind"])]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(kind="consent")
                | (models.Q(meter__isnull=False) & models.Q(data_from__isnull=False)),
                name="consent_token_has_meter_and_window",
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} token {self.prefix} ({self.name})"

    def is_valid(self, now) -> bool:
        return self.revoked_at is None and self.expires_at > now
