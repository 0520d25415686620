"""Meters, their SIMs and premises, and the key material that secures their messages."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from .identifiers import (
    format_meter_number,
    validate_iccid,
    validate_meter_number,
    validate_msisdn,
)


class Premises(models.Model):
    """Where a meter is installed; a meter swap keeps the premises (and the customer's totals)."""

    reference = models.CharField(max_length=40, unique=True, help_text="The utility's premises id.")
    address = models.TextField(blank=True)
    postcode = models.CharField(max_length=16, blank=True)

    class Meta:
        verbose_name_plural = "premises"

    def __str__(self) -> str:
        return self.reference


class MeterStatus(models.TextChoices):
    REGISTERED = "registered", "Registered"
    PROVISIONED = "provisioned", "Provisioned"
    ACTIVE = "active", "Active"
    SUSPENDED = "suspended", "Suspended"
    DECOMMISSIONED = "decommissioned", "Decommissioned"


# Lifecycle: which status may follow which. Decommissioned is final.
METER_TRANSITIONS: dict[str, frozenset[str]] = {
    MeterStatus.REGISTERED: frozenset({MeterStatus.PROVISIONED, MeterStatus.DECOMMISSIONED}),
    MeterStatus.PROVISIONED: frozenset(
        {MeterStatus.ACTIVE, MeterStatus.SUSPENDED, MeterStatus.DECOMMISSIONED}
    ),
    MeterStatus.ACTIVE: frozenset({MeterStatus.SUSPENDED, MeterStatus.DECOMMISSIONED}),
    MeterStatus.SUSPENDED: frozenset({MeterStatus.ACTIVE, MeterStatus.DECOMMISSIONED}),
    MeterStatus.DECOMMISSIONED: frozenset(),
}


class Meter(models.Model):
    number = models.CharField(
        "meter number", max_length=25, unique=True, validators=[validate_meter_number]
    )
    status = models.CharField(
        max_length=16, choices=MeterStatus.choices, default=MeterStatus.REGISTERED
    )
    manufacturer = models.CharField(max_length=80, blank=True)
    model = models.CharField(max_length=80, blank=True)
    batch = models.CharField(max_length=80, blank=True)
    premises = models.ForeignKey(
        Premises, null=True, blank=True, on_delete=models.PROTECT, related_name="meters"
    )
    # The meter's own Ed25519 public key, created on the device at provisioning; it verifies
    # the readings exports field engineers upload.
    signing_public_key = models.BinaryField(max_length=32, null=True, blank=True, editable=False)
    software_version = models.CharField(max_length=16, blank=True, editable=False)
    registered_at = models.DateTimeField(auto_now_add=True)
    status_changed_at = models.DateTimeField(null=True, blank=True)
    last_message_at = models.DateTimeField(null=True, blank=True)
    rejected_while_suspended = models.PositiveIntegerField(default=0)
    # The contiguous high-water mark of stored readings (unix hours), sent in every ack.
    acked_through_hour = models.BigIntegerField(null=True, blank=True, editable=False)

    class Meta:
        permissions = [
            ("import_meters", "Can import meters from a manufacturer manifest"),
            ("issue_bundle", "Can issue a provisioning bundle (generates a new key)"),
            ("rotate_keys", "Can schedule key rotations"),
            ("suspend_meter", "Can suspend and reactivate meters"),
            ("decommission_meter", "Can decommission and replace meters"),
        ]
        indexes = [models.Index(fields=["status"])]

    def __str__(self) -> str:
        return format_meter_number(self.number)


class Sim(models.Model):
    msisdn = models.CharField("MSISDN", max_length=16, unique=True, validators=[validate_msisdn])
    iccid = models.CharField("ICCID", max_length=20, unique=True, validators=[validate_iccid])
    meter = models.OneToOneField(
        Meter, null=True, blank=True, on_delete=models.SET_NULL, related_name="sim"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "SIM"

    def __str__(self) -> str:
        return self.msisdn


class KeyState(models.TextChoices):
    PENDING = "pending", "Pending (issued, not yet used by the meter)"
    ACTIVE = "active", "Active"
    RETIRED = "retired", "Retired"
    WITHDRAWN = "withdrawn", "Withdrawn (superseded before use)"
    DESTROYED = "destroyed", "Destroyed"


class MeterKey(models.Model):
    """A root key of one meter, stored only wrapped under the key-encryption key (S1)."""

    meter = models.ForeignKey(Meter, on_delete=models.CASCADE, related_name="keys")
    key_id = models.PositiveIntegerField(help_text="The key id carried in every message.")
    state = models.CharField(max_length=16, choices=KeyState.choices, default=KeyState.PENDING)
    origin = models.CharField(max_length=16, choices=[("bundle", "Bundle"), ("rekey", "Rekey")])
    # HPKE ciphertext of the 32-byte root key; emptied when the key is withdrawn or destroyed.
    wrapped_key = models.BinaryField(editable=False)
    kek_id = models.CharField(max_length=32, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    activated_at = models.DateTimeField(null=True, blank=True)
    retired_at = models.DateTimeField(null=True, blank=True)
    # Protocol state under this key (S4): the uplink replay window and the last downlink
    # counter used. The bitmap is an unsigned 64-bit value stored in a signed column.
    uplink_highest = models.BigIntegerField(default=0, editable=False)
    uplink_bitmap = models.BigIntegerField(default=0, editable=False)
    downlink_counter = models.BigIntegerField(default=0, editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["meter", "key_id"], name="devices_key_id_unique"),
            models.UniqueConstraint(
                fields=["meter"],
                condition=Q(state=KeyState.ACTIVE),
                name="devices_one_active_key_per_meter",
            ),
            models.CheckConstraint(condition=Q(key_id__lte=0xFFFF), name="devices_key_id_range"),
        ]

    def __str__(self) -> str:
        return f"{self.meter} key {self.key_id} ({self.state})"


class MeterReplacement(models.Model):
    """A meter swap: the old meter's final reading and the new meter's first, linked."""

    old_meter = models.OneToOneField(Meter, on_delete=models.PROTECT, related_name="replaced_by")
    new_meter = models.OneToOneField(Meter, on_delete=models.PROTECT, related_name="replaces")
    premises = models.ForeignKey(Premises, null=True, on_delete=models.PROTECT)
    replaced_at = models.DateTimeField()
    old_final_wh = models.BigIntegerField(help_text="Old meter's last cumulative reading (Wh).")
    new_first_wh = models.BigIntegerField(help_text="New meter's first cumulative reading (Wh).")

    def __str__(self) -> str:
        return f"{self.old_meter} → {self.new_meter}"


class RotationState(models.TextChoices):
    SCHEDULED = "scheduled", "Scheduled"
    INIT_SENT = "init_sent", "Key agreement sent to the meter"
    STALLED = "stalled", "Out of attempts: the meter never answered"
    ACCEPTED = "accepted", "Meter answered; new key waiting for first use"
    COMPLETED = "completed", "Completed (old key retired)"
    CANCELLED = "cancelled", "Cancelled"


OPEN_ROTATION_STATES = (
    RotationState.SCHEDULED,
    RotationState.INIT_SENT,
    RotationState.STALLED,
    RotationState.ACCEPTED,
)
# Staff may cancel these. Not an accepted exchange: the meter may already have switched to the
# new key, and withdrawing it would leave the meter unheard; it completes on the next report.
CANCELLABLE_ROTATION_STATES = (
    RotationState.SCHEDULED,
    RotationState.INIT_SENT,
    RotationState.STALLED,
)


class KeyRotation(models.Model):
    """One over-the-air rekey of a meter (protocol REKEY_INIT / REKEY_ACCEPT)."""

    meter = models.ForeignKey(Meter, on_delete=models.CASCADE, related_name="rotations")
    old_key = models.ForeignKey(MeterKey, on_delete=models.PROTECT, related_name="+")
    new_key_id = models.PositiveIntegerField()
    state = models.CharField(
        max_length=16, choices=RotationState.choices, default=RotationState.SCHEDULED
    )
    # The server's ephemeral X25519 private key, wrapped under the KEK, kept only while the
    # exchange is open and erased when it completes (forward secrecy).
    wrapped_ephemeral = models.BinaryField(null=True, editable=False)
    ephemeral_kek_id = models.CharField(max_length=32, blank=True, editable=False)
    init_attempts = models.PositiveSmallIntegerField(default=0)
    requested_by = models.CharField(max_length=254)
    created_at = models.DateTimeField(auto_now_add=True)
    last_sent_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["meter"],
                condition=Q(state__in=OPEN_ROTATION_STATES),
                name="devices_one_open_rotation_per_meter",
            )
        ]

    def __str__(self) -> str:
        return f"{self.meter}: key {self.old_key.key_id} → {self.new_key_id} ({self.state})"


class MeterEvent(models.Model):
    """Something the meter reported: tamper, reboot, clock step, service action, store failure."""

    meter = models.ForeignKey(Meter, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=32)
    occurred_at = models.DateTimeField()
    arg = models.BigIntegerField(default=0)
    received_at = models.DateTimeField()
    inbound_message_id = models.BigIntegerField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["meter", "occurred_at"]), models.Index(fields=["kind"])]
        constraints = [
            models.UniqueConstraint(
                fields=["meter", "kind", "occurred_at", "arg"], name="devices_event_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.meter} {self.kind} at {self.occurred_at:%Y-%m-%d %H:%M}"


class AlertKind(models.TextChoices):
    SILENT = "silent", "Silent beyond its schedule"
    TAMPER = "tamper", "Tamper or store integrity event"
    AUTH_FAILURES = "auth_failures", "Burst of failed authentication"
    IDENTITY_CHANGED = "identity_changed", "Meter presented a different signing key"
    ROTATION_STALLED = "rotation_stalled", "Key rotation out of attempts"


class MeterAlert(models.Model):
    """An open condition staff should look at; closed when it clears."""

    meter = models.ForeignKey(Meter, on_delete=models.CASCADE, related_name="alerts")
    kind = models.CharField(max_length=32, choices=AlertKind.choices)
    opened_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)
    details = models.JSONField(default=dict, blank=True)
    closed_by = models.CharField(max_length=254, blank=True)

    class Meta:
        permissions = [("close_alert", "Can close meter alerts after looking into them")]
        constraints = [
            models.UniqueConstraint(
                fields=["meter", "kind"],
                condition=Q(closed_at__isnull=True),
                name="devices_one_open_alert_per_kind",
            )
        ]

    def __str__(self) -> str:
        return f"{self.meter}: {self.get_kind_display()}"
