"""Anomaly caps (S12, GCHQ "looking for weirdness"): a critical action repeated beyond its
configured rate is stopped, recorded as an alert and reported to the operators.

The audit log is the counter: every critical action is recorded there anyway, so a cap is a
count of recent records of that action. A mass request that would cross the cap is refused
whole, before any of it runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from django.contrib.auth.base_user import AbstractBaseUser
from django.core.mail import mail_admins
from django.db import connection, transaction
from django.utils import timezone

from audit.conf import setting
from utility.pg import advisory_xact_lock

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


def _over_cap(action: str, requested: int) -> CapExceeded | None:
    cap = setting("ANOMALY_CAPS").get(action)
    if cap is None:
        return None
    limit, window = cap
    since = timezone.now() - timedelta(seconds=window)
    recent = AuditEvent.objects.filter(
        action=action, outcome=Outcome.SUCCESS, created_at__gte=since
    ).count()
    if recent + requested <= limit:
        return None
    return CapExceeded(action, limit, window, recent, requested)


def _alert(error: CapExceeded, actor: AbstractBaseUser | str | None) -> None:
    record(
        "cap.exceeded",
        actor=actor,
        target=error.action,
        outcome=Outcome.ALERT,
        details={
            "limit": error.limit,
            "window_s": error.window,
            "recent": error.recent,
            "requested": error.requested,
        },
    )
    # After the commit: not while the cap's lock (and the caller's rows) are held, and not at
    # all for an alert that is rolled back.
    transaction.on_commit(lambda: mail_admins(f"Anomaly cap reached: {error.action}", str(error)))


def cap_lock_name(action: str) -> str:
    return f"cap:{action}"


def _serialise(action: str) -> None:
    """Hold a transaction-scoped lock per action, so concurrent requests count one another's
    records."""
    advisory_xact_lock(cap_lock_name(action))


def check_cap(
    action: str, *, requested: int = 1, actor: AbstractBaseUser | str | None = None
) -> CapExceeded | None:
    """For an action that goes on over its cap in another form (a dispatch held for a second
    approver, a claim marked undeliverable): inside the transaction that records the action,
    take the action's lock (held until that transaction ends) and count. Over the cap the
    alert is recorded, committed with the caller's outcome (and mailed after that commit), and
    the error returned."""
    if not connection.in_atomic_block:
        raise RuntimeError("check_cap() must run inside the transaction that records the action")
    _serialise(action)
    error = _over_cap(action, requested)
    if error is not None:
        _alert(error, actor)
    return error


@contextmanager
def capped(
    action: str, *, requested: int = 1, actor: AbstractBaseUser | str | None = None
) -> Iterator[None]:
    """A transaction in which `requested` more `action`s may be done and recorded: the cap is
    checked under a lock held until the records are committed, so two concurrent mass
    requests cannot both slip under it. Over the cap, nothing runs; the alert is recorded
    outside the rolled-back transaction and CapExceeded raised."""
    refused: CapExceeded | None = None
    try:
        with transaction.atomic():
            _serialise(action)
            refused = _over_cap(action, requested)
            if refused is not None:
                raise refused
            yield
    except CapExceeded as error:
        if error is refused:
            _alert(error, actor)
        raise
