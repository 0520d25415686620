"""Hourly cumulative readings: one row per meter and hour, partitioned by month on PostgreSQL."""

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
    meter = models.ForeignKey("devices.Meter", on_delete=models.PROTECT, related_name="+")
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
