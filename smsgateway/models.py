"""Inbound SMS, stored raw before anything else happens, and the outbound SMS outbox."""

from django.db import models


class InboundStatus(models.TextChoices):
    RECEIVED = "received", "Received, not yet processed"
    ACCEPTED = "accepted", "Accepted"
    REJECTED = "rejected", "Rejected"
    PART = "part", "Part of a concatenated message"


class RejectReason(models.TextChoices):
    UNKNOWN_SENDER = "unknown_sender", "Sender is no registered SIM"
    NO_METER = "no_meter", "SIM is bound to no meter"
    METER_SUSPENDED = "meter_suspended", "Meter is suspended"
    METER_DECOMMISSIONED = "meter_decommissioned", "Meter is decommissioned"
    METER_NOT_PROVISIONED = "meter_not_provisioned", "Meter has no key yet"
    NOT_BINARY = "not_binary", "Not an 8-bit data message"
    OVERSIZED = "oversized", "Larger than a protocol frame"
    MALFORMED = "malformed", "Malformed frame or payload"
    BAD_VERSION = "bad_version", "Unsupported protocol version"
    UNKNOWN_KEY = "unknown_key", "Unknown or retired key id"
    KEY_UNUSABLE = "key_unusable", "The meter's stored key does not open (tampered or moved)"
    AUTH_FAILED = "auth_failed", "Authentication tag does not verify"
    REPLAY = "replay", "Counter already accepted (replay)"
    STALE = "stale", "Counter older than the replay window"
    IMPLAUSIBLE = "implausible", "Readings from the future or out of range"
    INCOMPLETE = "incomplete", "Concatenated message never completed"
    TOO_MANY_PARTS = "too_many_parts", "Concatenated message with too many parts"


class InboundMessage(models.Model):
    gateway = models.CharField(max_length=32)
    # Unique per gateway message: a gateway retry finds the row and changes nothing.
    dedupe_key = models.CharField(max_length=128)
    sender = models.CharField(max_length=32)
    receiver = models.CharField(max_length=32, blank=True)
    smsc = models.CharField(max_length=64, blank=True)
    gateway_time = models.DateTimeField(null=True, blank=True)
    coding = models.SmallIntegerField(null=True, blank=True)
    udh = models.BinaryField(default=b"", blank=True)
    payload = models.BinaryField()
    received_at = models.DateTimeField()
    status = models.CharField(
        max_length=16, choices=InboundStatus.choices, default=InboundStatus.RECEIVED
    )
    reason = models.CharField(max_length=32, choices=RejectReason.choices, blank=True)
    detail = models.CharField(max_length=255, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    meter = models.ForeignKey(
        "devices.Meter",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,  # inbound_by_meter leads with it
    )
    key_id = models.PositiveIntegerField(null=True, blank=True)
    counter = models.BigIntegerField(null=True, blank=True)
    # Hours (unix) covered by the report: every reading the meter had in this range is in it.
    first_hour = models.BigIntegerField(null=True, blank=True)
    last_hour = models.BigIntegerField(null=True, blank=True)
    # Concatenation (only when the gateway did not combine the parts itself).
    concat_ref = models.PositiveIntegerField(null=True, blank=True)
    concat_total = models.PositiveSmallIntegerField(null=True, blank=True)
    concat_seq = models.PositiveSmallIntegerField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["gateway", "dedupe_key"], name="inbound_once")
        ]
        indexes = [
            # The drains' queue: only waiting messages, in arrival order, so claiming a batch
            # reads that batch and no more, however long the backlog after an outage.
            models.Index(
                fields=["id"], condition=models.Q(status="received"), name="inbound_waiting"
            ),
            # Nearly every message is stored, then accepted: the indexes below leave out the
            # rows they are never asked for, so storing a message and accepting it write
            # as few index entries as possible (both run thousands of times a second).
            models.Index(
                fields=["status", "received_at"],
                condition=~models.Q(status="accepted"),
                name="inbound_unaccepted",
            ),
            models.Index(
                fields=["reason", "received_at"],
                condition=models.Q(status="rejected"),
                name="inbound_rejected",
            ),
            models.Index(
                fields=["sender", "received_at"],
                condition=models.Q(status="part"),
                name="inbound_parts",
            ),
            models.Index(
                fields=["meter", "status", "last_hour"],
                condition=models.Q(meter__isnull=False),
                name="inbound_by_meter",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} from {self.sender} ({self.status})"


class OutboundStatus(models.TextChoices):
    PENDING = "pending", "Waiting to be sent"
    SENT = "sent", "Handed to the gateway"
    DELIVERED = "delivered", "Delivered to the meter"
    FAILED = "failed", "Failed"
    CAPPED = "capped", "Held: daily cap for this meter reached"


class OutboundKind(models.TextChoices):
    ACK = "ack", "Acknowledgement"
    REKEY = "rekey", "Key agreement"


class OutboundMessage(models.Model):
    """One sealed downlink frame to send; the payload is ciphertext, safe to store."""

    meter = models.ForeignKey("devices.Meter", on_delete=models.CASCADE, related_name="+")
    msisdn = models.CharField(max_length=16)
    kind = models.CharField(max_length=16, choices=OutboundKind.choices)
    payload = models.BinaryField()
    key_id = models.PositiveIntegerField()
    counter = models.BigIntegerField()
    status = models.CharField(
        max_length=16, choices=OutboundStatus.choices, default=OutboundStatus.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField()
    next_attempt_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    gateway_ref = models.CharField(max_length=64, blank=True)
    last_error = models.CharField(max_length=255, blank=True)

    class Meta:
        permissions = [("send_again", "Can send failed outbound SMS again")]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"]),
            models.Index(fields=["meter", "created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.kind} to {self.msisdn} ({self.status})"


class DeliveryReport(models.Model):
    outbound = models.ForeignKey(
        OutboundMessage, on_delete=models.CASCADE, related_name="delivery_reports"
    )
    status_code = models.SmallIntegerField()
    detail = models.CharField(max_length=255, blank=True)
    received_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"DLR {self.status_code} for #{self.outbound_id}"
