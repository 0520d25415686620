"""Anomaly caps (S12, GCHQ "looking for weirdness"): a critical action repeated beyond its
configured rate is stopped, recorded as an alert and reported to the operators.

The audit log is the counter: every critical action is recorded there anyway, so a cap is a
count of recent records of that action. A mass request that would cross the cap is refused
whole, before any of it runs.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.mail import mail_admins
from django.utils import timezone

from .models import AuditEvent, Outcome
from .services import record


class CapExceeded(Exception):
    """The action was refused: it would exceed an anomaly cap."""

    def __init__(self, action: str, limit: int, window: int, recent: int, requested: int):
        self.action, self.limit, self.window = action, limit, window
        self.recent, self.requested = recent, requested
        super().__init__(
            f"{action}: {recent} in the last {window // 60} min plus {requested} requested "
            f"exceeds the cap of {limit}; stopped and reported to the security team."
        )


def enforce_cap(
    action: str, *, requested: int = 1, actor: AbstractBaseUser | str | None = None
) -> None:
    """Raise CapExceeded (after recording an alert) if `requested` more `action`s would cross
    the cap configured in settings.ANOMALY_CAPS; do nothing for an action without a cap."""
    cap = settings.ANOMALY_CAPS.get(action)
    if cap is None:
        return
    limit, window = cap
    since = timezone.now() - timedelta(seconds=window)
    recent = AuditEvent.objects.filter(
        action=action, outcome=Outcome.SUCCESS, created_at__gte=since
    ).count()
    if recent + requested <= limit:
        return
    error = CapExceeded(action, limit, window, recent, requested)
    record(
        "cap.exceeded",
        actor=actor,
        target=action,
        outcome=Outcome.ALERT,
        details={"limit": limit, "window_s": window, "recent": recent, "requested": requested},
    )
    mail_admins(f"Anomaly cap reached: {action}", str(error))
    raise error
