"""The gateway's delivery reports for what the outbox sent."""

from __future__ import annotations

from datetime import datetime

from ..models import DeliveryReport, OutboundMessage, OutboundStatus

# Kannel DLR status codes: 1 delivered, 2 failed, 4 queued on SMSC, 8 accepted by SMSC,
# 16 rejected by SMSC.
_DLR_FINAL = {1: OutboundStatus.DELIVERED, 2: OutboundStatus.FAILED, 16: OutboundStatus.FAILED}


def record_delivery_report(outbound_id: int, status_code: int, *, now: datetime, detail: str = ""):
    outbound = OutboundMessage.objects.filter(pk=outbound_id).first()
    if outbound is None:
        return None
    report = DeliveryReport.objects.create(
        outbound=outbound, status_code=status_code, detail=detail[:255], received_at=now
    )
    final = _DLR_FINAL.get(status_code)
    if final is not None:
        OutboundMessage.objects.filter(pk=outbound_id).update(
            status=final, delivered_at=now if final == OutboundStatus.DELIVERED else None
        )
    return report
