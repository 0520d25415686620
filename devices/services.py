"""Writes for meters, SIMs and keys: provisioning, lifecycle, rotation. Each is audited."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.caps import capped
from audit.models import Outcome
from audit.services import record
from devices.conf import setting
from meteragent.bundle import Bundle
from meteragent.protocol import RekeyAccept, RekeyInit, ServerRekey

from .keystore import get_keystore, new_root_key
from .models import (
    CANCELLABLE_ROTATION_STATES,
    METER_TRANSITIONS,
    OPEN_ROTATION_STATES,
    AlertKind,
    KeyRotation,
    KeyState,
    Meter,
    MeterAlert,
    MeterKey,
    MeterReplacement,
    MeterStatus,
    RotationState,
)
from .selectors import key_context, next_key_id, session_keys

Actor = AbstractBaseUser | str


class DeviceError(Exception):
    """A requested device operation is not allowed in the meter's current state."""


# --- provisioning ---


def issue_bundle(meter: Meter, *, by: Actor, now: datetime | None = None) -> bytes:
    """Generate a new root key for `meter` and return its provisioning bundle.

    The bundle is returned once and never stored: a second download means a new key, and
    the key of an earlier, unused bundle is withdrawn.
    """
    now = now or timezone.now()
    with capped("devices.bundle_issued", actor=by):
        meter = Meter.objects.select_for_update().get(pk=meter.pk)
        if meter.status not in (MeterStatus.REGISTERED, MeterStatus.PROVISIONED):
            raise DeviceError(
                f"meter is {meter.status}; a provisioned meter in service gets a new key by "
                "rotation, not by a new bundle"
            )
        withdrawn = meter.keys.filter(state=KeyState.PENDING).update(
            state=KeyState.WITHDRAWN, wrapped_key=b"", retired_at=now
        )
        key_id = next_key_id(meter)
        root = new_root_key()
        store = get_keystore()
        MeterKey.objects.create(
            meter=meter,
            key_id=key_id,
            state=KeyState.PENDING,
            origin="bundle",
            wrapped_key=store.wrap(root, context=key_context(meter.number, key_id)),
            kek_id=store.kek_id,
        )
        if meter.status == MeterStatus.REGISTERED:
            _set_status(meter, MeterStatus.PROVISIONED, now)
        record(
            "devices.bundle_issued",
            actor=by,
            target=f"meter:{meter.number}",
            details={"key_id": key_id, "withdrawn_keys": withdrawn},
        )
    return Bundle(
        meter_number=meter.number,
        key_id=key_id,
        root_key=root,
        utility_msisdn=settings.SMS_GATEWAY_MSISDN,
        issued_at=now,
        release_public_key=_release_key(),
    ).to_bytes()


def _release_key() -> bytes | None:
    import base64

    value = setting("METER_RELEASE_PUBLIC_KEY")
    return base64.b64decode(value) if value else None


def key_used(meter: Meter, key_id: int, *, at: datetime) -> None:
    """An uplink frame under `key_id` verified: a pending key becomes the active one, the
    previous key retires, and a rotation waiting for this moment completes."""
    with transaction.atomic():
        key = MeterKey.objects.select_for_update().get(meter=meter, key_id=key_id)
        if key.state != KeyState.PENDING:
            return
        retired = list(meter.keys.filter(state=KeyState.ACTIVE).values_list("key_id", flat=True))
        meter.keys.filter(state=KeyState.ACTIVE).update(state=KeyState.RETIRED, retired_at=at)
        key.state, key.activated_at = KeyState.ACTIVE, at
        key.save(update_fields=["state", "activated_at"])
        KeyRotation.objects.filter(
            meter=meter, new_key_id=key_id, state=RotationState.ACCEPTED
        ).update(state=RotationState.COMPLETED, completed_at=at)
        meter = Meter.objects.select_for_update().get(pk=meter.pk)
        if meter.status == MeterStatus.PROVISIONED:
            _set_status(meter, MeterStatus.ACTIVE, at)
        record(
            "devices.key_activated",
            actor="smsgateway",
            target=f"meter:{meter.number}",
            details={"key_id": key_id, "retired_key_ids": retired},
        )


# --- lifecycle ---


def _set_status(meter: Meter, status: str, now: datetime) -> None:
    if status not in METER_TRANSITIONS[meter.status]:
        raise DeviceError(f"a {meter.status} meter cannot become {status}")
    meter.status, meter.status_changed_at = status, now
    meter.save(update_fields=["status", "status_changed_at"])


def suspend_meters(meters: Iterable[Meter], *, by: Actor, reason: str) -> int:
    """Suspend meters: their messages are then rejected (and counted) until reactivated."""
    meters = list(meters)
    now = timezone.now()
    with capped("devices.meter_suspended", requested=len(meters), actor=by):
        for meter in Meter.objects.select_for_update().filter(pk__in=[m.pk for m in meters]):
            _set_status(meter, MeterStatus.SUSPENDED, now)
            record(
                "devices.meter_suspended",
                actor=by,
                target=f"meter:{meter.number}",
                details={"reason": reason},
            )
    return len(meters)


def reactivate_meter(meter: Meter, *, by: Actor, reason: str) -> None:
    with transaction.atomic():
        meter = Meter.objects.select_for_update().get(pk=meter.pk)
        has_active_key = meter.keys.filter(state=KeyState.ACTIVE).exists()
        target = MeterStatus.ACTIVE if has_active_key else MeterStatus.PROVISIONED
        if meter.status != MeterStatus.SUSPENDED:
            raise DeviceError("only a suspended meter can be reactivated")
        meter.status, meter.status_changed_at = target, timezone.now()
        meter.save(update_fields=["status", "status_changed_at"])
        record(
            "devices.meter_reactivated",
            actor=by,
            target=f"meter:{meter.number}",
            details={"reason": reason},
        )


def decommission_meters(meters: Iterable[Meter], *, by: Actor, reason: str) -> int:
    """Decommission several meters; a mass request beyond the cap is refused whole, before
    any key is destroyed."""
    meters = list(meters)
    with capped("devices.meter_decommissioned", requested=len(meters), actor=by):
        for meter in meters:
            _decommission(meter, by=by, reason=reason)
    return len(meters)


def decommission_meter(meter: Meter, *, by: Actor, reason: str) -> None:
    """Take a meter out of service for good: its keys are destroyed, its readings kept."""
    with capped("devices.meter_decommissioned", actor=by):
        _decommission(meter, by=by, reason=reason)


def _decommission(meter: Meter, *, by: Actor, reason: str) -> None:
    now = timezone.now()
    with transaction.atomic():
        meter = Meter.objects.select_for_update().get(pk=meter.pk)
        _set_status(meter, MeterStatus.DECOMMISSIONED, now)
        destroyed = meter.keys.exclude(state=KeyState.DESTROYED).update(
            state=KeyState.DESTROYED, wrapped_key=b"", retired_at=now
        )
        meter.rotations.filter(state__in=OPEN_ROTATION_STATES).update(
            state=RotationState.CANCELLED, wrapped_ephemeral=None, completed_at=now
        )
        meter.alerts.filter(closed_at__isnull=True).update(closed_at=now)
        record(
            "devices.meter_decommissioned",
            actor=by,
            target=f"meter:{meter.number}",
            details={"reason": reason, "keys_destroyed": destroyed},
        )


def replace_meter(
    *,
    old: Meter,
    new: Meter,
    old_final_wh: int,
    new_first_wh: int,
    at: datetime,
    by: Actor,
) -> MeterReplacement:
    """Swap meters at a premises, linking the old meter's last reading to the new one's first
    so the customer's consumption stays continuous; the old meter is decommissioned."""
    if old.pk == new.pk:
        raise DeviceError("a meter cannot replace itself")
    if old_final_wh < 0 or new_first_wh < 0:
        raise DeviceError("readings are never negative")
    decommission_meter(old, by=by, reason=f"replaced by {new.number}")
    with transaction.atomic():
        new = Meter.objects.select_for_update().get(pk=new.pk)
        if new.status == MeterStatus.DECOMMISSIONED:
            raise DeviceError("the new meter is decommissioned")
        new.premises = old.premises
        new.save(update_fields=["premises"])
        replacement = MeterReplacement.objects.create(
            old_meter=old,
            new_meter=new,
            premises=old.premises,
            replaced_at=at,
            old_final_wh=old_final_wh,
            new_first_wh=new_first_wh,
        )
        record(
            "devices.meter_replaced",
            actor=by,
            target=f"meter:{old.number}",
            details={
                "new_meter": new.number,
                "old_final_wh": old_final_wh,
                "new_first_wh": new_first_wh,
            },
        )
    return replacement


# --- key rotation over the air ---


def schedule_rotations(meters: Iterable[Meter], *, by: Actor) -> list[KeyRotation]:
    """Schedule a rekey for each active meter that has no rotation open. Mass requests beyond
    the anomaly cap are refused whole."""
    meters = list(meters)
    label = by.get_username() if isinstance(by, AbstractBaseUser) else by
    rotations = []
    with capped("devices.rotation_scheduled", requested=len(meters), actor=by):
        for meter in Meter.objects.select_for_update().filter(pk__in=[m.pk for m in meters]):
            if meter.status != MeterStatus.ACTIVE:
                raise DeviceError(f"meter {meter} is {meter.status}; only active meters rotate")
            if meter.rotations.filter(state__in=OPEN_ROTATION_STATES).exists():
                raise DeviceError(f"meter {meter} already has a rotation open")
            old_key = meter.keys.get(state=KeyState.ACTIVE)
            rotations.append(
                KeyRotation.objects.create(
                    meter=meter, old_key=old_key, new_key_id=next_key_id(meter), requested_by=label
                )
            )
            record(
                "devices.rotation_scheduled",
                actor=by,
                target=f"meter:{meter.number}",
                details={"old_key_id": old_key.key_id},
            )
    return rotations


def _ephemeral_context(rotation: KeyRotation) -> bytes:
    return f"rekey-ephemeral|{rotation.meter.number}|{rotation.new_key_id}".encode()


def rekey_init(rotation: KeyRotation, *, now: datetime) -> tuple[RekeyInit, MeterKey]:
    """The REKEY_INIT to send (or send again) for `rotation`, and the key to seal it under.

    The first call creates the server's ephemeral key; later calls (the INIT or its answer
    was lost) repeat the same INIT, so the meter's answer stays the same too.
    """
    store = get_keystore()
    with transaction.atomic():
        rotation = (
            KeyRotation.objects.select_for_update().select_related("meter").get(pk=rotation.pk)
        )
        if rotation.state not in (RotationState.SCHEDULED, RotationState.INIT_SENT):
            raise DeviceError(f"rotation is {rotation.state}")
        current = session_keys(rotation.old_key)
        if rotation.wrapped_ephemeral is None:
            exchange = ServerRekey(current, rotation.new_key_id)
            rotation.wrapped_ephemeral = store.wrap(
                exchange.private_bytes(), context=_ephemeral_context(rotation)
            )
            rotation.ephemeral_kek_id = store.kek_id
        else:
            exchange = _restore(rotation, current)
        rotation.state = RotationState.INIT_SENT
        rotation.init_attempts += 1
        rotation.last_sent_at = now
        rotation.save()
    return exchange.init_message, rotation.old_key


def _restore(rotation: KeyRotation, current) -> ServerRekey:
    private = get_keystore().unwrap(
        bytes(rotation.wrapped_ephemeral),
        context=_ephemeral_context(rotation),
        kek_id=rotation.ephemeral_kek_id,
    )
    return ServerRekey.restore(current, rotation.new_key_id, private)


def complete_rekey(meter: Meter, accept: RekeyAccept, *, now: datetime) -> MeterKey | None:
    """Handle a verified REKEY_ACCEPT from `meter`: derive and store the next root key as
    PENDING and erase the ephemeral key. A repeated ACCEPT changes nothing. Returns the new
    key, or None when no exchange for that key id is open (logged and audited)."""
    store = get_keystore()
    with transaction.atomic():
        rotation = (
            KeyRotation.objects.select_for_update()
            .select_related("meter", "old_key")
            .filter(meter=meter, new_key_id=accept.new_key_id)
            .order_by("-pk")
            .first()
        )
        # A stalled rotation still completes: the meter answered late.
        if rotation is None or rotation.state not in (
            RotationState.INIT_SENT,
            RotationState.STALLED,
            RotationState.ACCEPTED,
        ):
            record(
                "devices.rekey_unexpected",
                actor="smsgateway",
                target=f"meter:{meter.number}",
                outcome=Outcome.DENIED,
                details={"new_key_id": accept.new_key_id},
            )
            return None
        if rotation.state == RotationState.ACCEPTED:
            return meter.keys.get(key_id=rotation.new_key_id)  # duplicate: already done
        exchange = _restore(rotation, session_keys(rotation.old_key))
        new_root = exchange.finish(accept)
        new_key = MeterKey.objects.create(
            meter=meter,
            key_id=rotation.new_key_id,
            state=KeyState.PENDING,
            origin="rekey",
            wrapped_key=store.wrap(
                new_root, context=key_context(meter.number, rotation.new_key_id)
            ),
            kek_id=store.kek_id,
        )
        rotation.state = RotationState.ACCEPTED
        rotation.wrapped_ephemeral = None  # forward secrecy: the ephemeral key is gone
        rotation.save(update_fields=["state", "wrapped_ephemeral"])
        close_alerts(meter, AlertKind.ROTATION_STALLED, now=now)
        record(
            "devices.rekey_accepted",
            actor="smsgateway",
            target=f"meter:{meter.number}",
            details={"new_key_id": rotation.new_key_id},
        )
    return new_key


def stall_rotation(rotation: KeyRotation, *, now: datetime) -> bool:
    """The last REKEY_INIT went unanswered: stop resending, and alert staff, who cancel the
    rotation or restart it once the meter is back. A late ACCEPT still completes it. True when
    the rotation was stalled now (not by a concurrent sweep)."""
    with transaction.atomic():
        rotation = (
            KeyRotation.objects.select_for_update().select_related("meter").get(pk=rotation.pk)
        )
        if rotation.state != RotationState.INIT_SENT:
            return False
        rotation.state = RotationState.STALLED
        rotation.save(update_fields=["state"])
        open_alert(
            rotation.meter,
            AlertKind.ROTATION_STALLED,
            now=now,
            details={
                "rotation": rotation.pk,
                "new_key_id": rotation.new_key_id,
                "attempts": rotation.init_attempts,
                "last_sent_at": rotation.last_sent_at.isoformat() if rotation.last_sent_at else "",
            },
        )
    return True


def cancel_rotations(
    rotations: Iterable[KeyRotation], *, by: Actor, reason: str = "staff action"
) -> int:
    """Cancel open rotations that have not been answered: the exchange's ephemeral key is
    erased and the meter keeps its current key. A mass request beyond the cap, or one that
    includes a rotation that cannot be cancelled, is refused whole."""
    rotations = list(rotations)
    now = timezone.now()
    with capped("devices.rotation_cancelled", requested=len(rotations), actor=by):
        for rotation in _locked_rotations(rotations):
            if rotation.state not in CANCELLABLE_ROTATION_STATES:
                raise DeviceError(_not_cancellable(rotation))
            was = rotation.state
            rotation.state, rotation.wrapped_ephemeral = RotationState.CANCELLED, None
            rotation.completed_at = now
            rotation.save(update_fields=["state", "wrapped_ephemeral", "completed_at"])
            close_alerts(rotation.meter, AlertKind.ROTATION_STALLED, now=now)
            record(
                "devices.rotation_cancelled",
                actor=by,
                target=f"meter:{rotation.meter.number}",
                details={"new_key_id": rotation.new_key_id, "was": was, "reason": reason},
            )
    return len(rotations)


def cancel_rotation(rotation: KeyRotation, *, by: Actor, reason: str = "staff action") -> None:
    cancel_rotations([rotation], by=by, reason=reason)


def restart_rotations(rotations: Iterable[KeyRotation], *, by: Actor) -> int:
    """Send a stalled rotation's key agreement again from the first attempt (the meter is back
    in coverage). The same REKEY_INIT goes out, so a meter that did answer answers the same
    way. Capped like scheduling; a request with anything but stalled rotations of active
    meters is refused whole."""
    rotations = list(rotations)
    now = timezone.now()
    with capped("devices.rotation_restarted", requested=len(rotations), actor=by):
        for rotation in _locked_rotations(rotations):
            if rotation.state != RotationState.STALLED:
                raise DeviceError(
                    f"rotation of meter {rotation.meter} is {rotation.get_state_display()}; "
                    "only a stalled rotation restarts"
                )
            if rotation.meter.status != MeterStatus.ACTIVE:
                raise DeviceError(f"meter {rotation.meter} is {rotation.meter.status}")
            attempts = rotation.init_attempts
            rotation.state, rotation.init_attempts = RotationState.SCHEDULED, 0
            rotation.save(update_fields=["state", "init_attempts"])
            close_alerts(rotation.meter, AlertKind.ROTATION_STALLED, now=now)
            record(
                "devices.rotation_restarted",
                actor=by,
                target=f"meter:{rotation.meter.number}",
                details={"new_key_id": rotation.new_key_id, "attempts_before": attempts},
            )
    return len(rotations)


def _locked_rotations(rotations: list[KeyRotation]):
    return (
        KeyRotation.objects.select_for_update(of=("self",))
        .select_related("meter")
        .filter(pk__in=[r.pk for r in rotations])
        .order_by("pk")
    )


def _not_cancellable(rotation: KeyRotation) -> str:
    if rotation.state == RotationState.ACCEPTED:
        return (
            f"the meter {rotation.meter} has answered the key agreement and may already use "
            "the new key; the rotation completes with its next report"
        )
    return f"rotation of meter {rotation.meter} is {rotation.get_state_display()}"


# --- alerts ---


def open_alert(
    meter: Meter, kind: str, *, now: datetime, details: dict, actor: Actor = "smsgateway"
) -> bool:
    """Open an alert on `meter` unless one of that kind is already open, and record it in the
    audit log as an alert. True when newly opened."""
    if MeterAlert.objects.filter(meter=meter, kind=kind, closed_at__isnull=True).exists():
        return False
    try:
        with transaction.atomic():
            MeterAlert.objects.create(meter=meter, kind=kind, opened_at=now, details=details)
    except IntegrityError:
        return False  # opened concurrently
    record(
        f"devices.alert_{kind}",
        actor=actor,
        target=f"meter:{meter.number}",
        outcome=Outcome.ALERT,
        details=details,
    )
    return True


def close_alerts_by_staff(alerts: Iterable[MeterAlert], *, by: Actor, now: datetime) -> int:
    """Staff looked into these alerts (a tamper report, a burst of failed authentication, a
    changed signing key) and close them. Audited; returns how many were open."""
    label = by.get_username() if isinstance(by, AbstractBaseUser) else by
    closed = 0
    with transaction.atomic():
        open_alerts = MeterAlert.objects.select_for_update().select_related("meter")
        for alert in open_alerts.filter(pk__in=[a.pk for a in alerts], closed_at__isnull=True):
            alert.closed_at, alert.closed_by = now, label
            alert.save(update_fields=["closed_at", "closed_by"])
            record(
                "devices.alert_closed",
                actor=by,
                target=f"meter:{alert.meter.number}",
                details={"kind": alert.kind, "opened_at": alert.opened_at.isoformat()},
            )
            closed += 1
    return closed


def close_alerts(meter: Meter, kind: str, *, now: datetime) -> int:
    return MeterAlert.objects.filter(meter=meter, kind=kind, closed_at__isnull=True).update(
        closed_at=now
    )


def register_device_info(
    meter: Meter, *, signing_public: bytes, software_version: str, now: datetime
) -> bool:
    """Record the meter's own signing key (first time only) and its software version.

    The key verifies the meter's SD-card exports, so it is set once: a different key later is
    not taken (someone may be replaying another device's identity) but raises an alert for
    staff, who re-register it after a legitimate re-provisioning. Returns True when accepted.
    """
    with transaction.atomic():
        meter = Meter.objects.select_for_update().get(pk=meter.pk)
        stored = bytes(meter.signing_public_key) if meter.signing_public_key else None
        if stored is not None and stored != signing_public:
            if not MeterAlert.objects.filter(
                meter=meter, kind=AlertKind.IDENTITY_CHANGED, closed_at__isnull=True
            ).exists():
                MeterAlert.objects.create(
                    meter=meter,
                    kind=AlertKind.IDENTITY_CHANGED,
                    opened_at=now,
                    details={"presented_key": signing_public.hex()},
                )
            record(
                "devices.signing_key_mismatch",
                actor="smsgateway",
                target=f"meter:{meter.number}",
                outcome=Outcome.ALERT,
                details={"presented_key": signing_public.hex()},
            )
            return False
        changed = []
        if stored is None:
            meter.signing_public_key = signing_public
            changed.append("signing_public_key")
        if meter.software_version != software_version:
            meter.software_version = software_version
            changed.append("software_version")
        if changed:
            meter.save(update_fields=changed)
            record(
                "devices.device_info",
                actor="smsgateway",
                target=f"meter:{meter.number}",
                details={"changed": changed, "software_version": software_version},
            )
    return True
