import logging

from celery import shared_task
from django.core.mail import mail_admins

from . import services
from .models import Outcome
from .verify import verify_chain

logger = logging.getLogger("audit")


@shared_task(name="audit.verify_chain")
def verify_chain_task() -> dict:
    """Scheduled check of the whole chain; a break alerts the operators."""
    report = verify_chain()
    if not report.ok:
        logger.critical("audit chain broken: %s", report.reason)
        mail_admins("Audit chain broken", report.reason)
    services.record(
        "audit.chain_verified",
        actor="beat",
        outcome=Outcome.SUCCESS if report.ok else Outcome.ALERT,
        details={"checked": report.checked, "reason": report.reason},
    )
    return {"ok": report.ok, "checked": report.checked, "reason": report.reason}
